"""Open a `dvc plots show` page in headless Chromium, offline, and read back what rendered.

DVC's page loads Vega, Vega-Lite and Vega-Embed from a CDN. Tests never use the network,
so the page is copied with those scripts pointed at npm tarballs of the same versions,
which `.ci/run` fetches into .ci/vega/ (or $VEGA_JS_DIR). A small script added to the
copy marks each chart that Vega-Embed finished (or the error it raised), whether each
image loaded, and records every console warning and error.
"""

from __future__ import annotations

import html as htmllib
import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.repos import dvc

CDN_SCRIPT = re.compile(r'<script src="https://cdn\.jsdelivr\.net/npm/([\w-]+)@([\d.]+)"></script>')

HOOK = """<script>
(() => {
  const log = [];
  const note = (kind, args) => {
    log.push(kind + ": " + Array.from(args).map(String).join(" "));
    document.documentElement.setAttribute("data-browser-log", log.join("\\n"));
  };
  for (const kind of ["warn", "error"]) {
    const original = console[kind];
    console[kind] = (...args) => { note(kind, args); original.apply(console, args); };
  }
  window.addEventListener("error", (event) => note("error", [event.message]));
  const embed = window.vegaEmbed;
  window.vegaEmbed = (el, spec, options) => embed(el, spec, options)
    .then((result) => { document.querySelector(el).setAttribute("data-rendered", "yes"); return result; })
    .catch((err) => { document.querySelector(el).setAttribute("data-error", String(err)); note("error", [err]); });
  window.addEventListener("load", () => document.querySelectorAll("img").forEach(
    (img) => img.setAttribute("data-loaded", img.naturalWidth > 0 ? "yes" : "no")));
})();
</script>"""

# Warnings that DVC's own pages and built-in templates give in any browser, harmless:
BENIGN_WARNINGS = [
    # Vega-Embed's version check: the templates' $schema names only the major version.
    re.compile(r"The (input|compiled) spec uses Vega(-Lite)? v5, but (the )?current version"),
    # DVC's linear template has a hover-rule layer, empty until the pointer moves, over
    # DVCLive's fields (the project's own templates use other field names).
    re.compile(r'Infinite extent for field "(step|accuracy|loss|epoch_seconds)"'),
    # DVC's confusion template leaves its per-revision "row" channel empty for one revision.
    re.compile(r'Dropping \{\} from channel "row"'),
]

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-background-networking",
    "--disable-component-update",
    "--virtual-time-budget=30000",
]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def vega_dir() -> Path:
    return Path(os.environ.get("VEGA_JS_DIR", ROOT / ".ci" / "vega"))


def missing() -> str | None:
    """Why the browser check can't run here, or None."""
    if not chromium():
        return "no chromium on PATH (Debian package `chromium`; .ci/run installs it)"
    if not any(vega_dir().glob("vega-*.tgz")):
        return f"no Vega tarballs in {vega_dir()} (.ci/run fetches them with npm pack)"
    return None


def local_script(package: str, version: str, folder: Path) -> Path:
    """The file the CDN serves for package@version, taken from its npm tarball."""
    tarball = vega_dir() / f"{package}-{version}.tgz"
    assert tarball.exists(), f"{tarball} missing: npm pack {package}@{version} into {vega_dir()}"
    with tarfile.open(tarball) as archive:
        entry = json.load(archive.extractfile("package/package.json"))["jsdelivr"]
        target = folder / f"{package}.js"
        target.write_bytes(archive.extractfile(f"package/{entry}").read())
    return target


@dataclass
class Page:
    charts: int  # Vega charts the page embeds
    rendered: int  # of those, finished by Vega-Embed with a canvas or svg
    images: int
    loaded_images: int
    problems: list[str]  # console errors, embedding errors, and warnings not known to be harmless


def render(page: Path) -> Page:
    """Open a copy of `page` (with local scripts) in headless Chromium and read the result."""
    html = page.read_text()
    charts, images = html.count("vegaEmbed('#"), html.count("<img")
    scripts = CDN_SCRIPT.findall(html)
    assert {package for package, _ in scripts} == {"vega", "vega-lite", "vega-embed"}, scripts

    def local(match: re.Match) -> str:
        return f'<script src="{local_script(match[1], match[2], page.parent).name}"></script>'

    html = CDN_SCRIPT.sub(local, html)
    last = html.rindex('<script src="vega-embed.js"></script>') + len('<script src="vega-embed.js"></script>')
    offline = page.with_name("offline.html")
    offline.write_text(html[:last] + HOOK + html[last:])
    profile = page.parent / "chromium-profile"
    result = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", offline.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    dom = result.stdout
    assert dom.strip(), f"chromium printed no page: {result.stderr[-2000:]}"
    log = re.search(r'data-browser-log="([^"]*)"', dom)
    lines = htmllib.unescape(log[1]).splitlines() if log else []
    problems = [
        line for line in lines if not (line.startswith("warn: ") and any(p.search(line) for p in BENIGN_WARNINGS))
    ]
    rendered = len(re.findall(r'data-rendered="yes"', dom))
    drawn = len(re.findall(r'<(?:canvas|svg)[^>]*class="marks"', dom))
    return Page(charts, min(rendered, drawn), images, dom.count('data-loaded="yes"'), problems)


def show_plots(repo: Path, folder: Path) -> Page:
    """`dvc plots show` of `repo` into `folder`, opened in the browser: every chart must draw and every
    image load, with no console problem. Skips the test where no browser is installed, unless
    REQUIRE_BROWSER is set (as in CI)."""
    output = dvc(repo, "plots", "show", "-o", str(folder))
    assert "WARNING" not in output and "ERROR" not in output, output
    why = missing()
    if why and not os.environ.get("REQUIRE_BROWSER"):
        pytest.skip(why)
    page = render(folder / "index.html")
    assert page.problems == []
    assert page.rendered == page.charts and page.loaded_images == page.images
    return page
