"""Which of the project's source files a stage runs: its `dvc.yaml` deps and its resume key.

Found by reading import statements (not by importing), transitively, keeping only modules
that live in this repository. A module's package `__init__.py` files count too: Python
runs them on import.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_file(module: str, root: Path = ROOT) -> Path | None:
    """The repository file of a dotted module name, or None if it is not the project's."""
    base = root.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported_modules(path: Path, module: str) -> set[str]:
    """Dotted names that a file imports, with `from a import b` giving both a and a.b."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def project_imports(module: str, root: Path = ROOT) -> list[Path]:
    """Every project file that running `module` imports, itself included, sorted, relative to root."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ first
            prefix = ".".join(parts[:i])
            path = module_file(prefix, root)
            if path is None or path in seen:
                continue
            seen.add(path)
            todo.extend(_imported_modules(path, prefix))
    return sorted(path.relative_to(root) for path in seen)


def source_digest(module: str, root: Path = ROOT) -> str:
    """sha256 over the paths and contents of every project file `module` imports."""
    digest = hashlib.sha256()
    for path in project_imports(module, root):
        digest.update(str(path).encode() + b"\0" + (root / path).read_bytes() + b"\0")
    return digest.hexdigest()
