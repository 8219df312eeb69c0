"""The numerical runtime: which Keras backend, TensorFlow's fastest CPU kernels, and how arrays reach Keras.

The backend and the kernels are read from the environment when Keras (and TensorFlow) are
first imported, so `configure` must run before that. The backend comes from params.yaml
(`train.backend`), so that `dvc exp run -S train.backend=jax` reruns what it must.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from widthdepth.stage import StageError

log = logging.getLogger("runtime")

BACKENDS = ("tensorflow", "jax", "torch")

# TensorFlow enables its oneDNN kernels by default only on AVX-512-class CPUs; on AVX2
# they trained this project's conv models 2-5x faster (benchmarks/train_speed.py), with
# bit-identical weights run to run. Batch norm in training through TensorFlow's fused kernel
# (widthdepth.training.batchnorm.fuse) trained the batch-norm models 1.06-1.49x faster.
# A value the user exported wins; "0" turns a switch off.
FUSED_BATCH_NORM = "WIDTHDEPTH_FUSED_BATCH_NORM"
FAST_DEFAULTS = {"TF_ENABLE_ONEDNN_OPTS": "1", FUSED_BATCH_NORM: "1"}


# The variables that cap a process's threads (TensorFlow's pools, OpenMP for oneDNN and
# PyTorch), set when several trainings share the cores (widthdepth.training.seeds).
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "OMP_NUM_THREADS")


def configure(backend: str, threads: int | None = None) -> dict[str, str]:
    """Set the backend, the speed defaults and (if given) a cap on the process's compute threads
    before Keras is imported; return what is in force."""
    check_backend(backend)
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != backend:
        raise RuntimeError(f"Keras is already imported with another backend than {backend}")
    exported = os.environ.get("KERAS_BACKEND")
    if exported and exported != backend:
        log.warning("KERAS_BACKEND=%s is ignored: params.yaml's train.backend is %s", exported, backend)
    os.environ["KERAS_BACKEND"] = backend
    for name, value in FAST_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if threads is not None:
        for name in THREAD_VARIABLES:
            os.environ[name] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = "1"
        if threads == 1:
            os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip()
    return settings()


def switched_on(name: str) -> bool:
    """Whether the speed switch `name` of FAST_DEFAULTS is on: as exported, else its default."""
    return os.environ.get(name, FAST_DEFAULTS[name]) != "0"


def check_backend(backend: str) -> None:
    """`train.backend` is a Keras backend, and installed here."""
    if backend not in BACKENDS:
        raise StageError(f"params.yaml: train.backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if importlib.util.find_spec(backend) is None:
        raise StageError(
            f"params.yaml: train.backend is {backend}, which is not installed here (pip install {backend})"
        )


def settings() -> dict[str, str]:
    """The runtime settings a result depends on: recorded with every run and in its resume key."""
    values = {
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        **{name: os.environ.get(name, "") for name in FAST_DEFAULTS},
    }
    return {**values, **{name: os.environ[name] for name in THREAD_VARIABLES if os.environ.get(name)}}


def machine() -> str:
    """The CPU model, its widest vector extension and the core count: the machine a result came from."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        cpuinfo = ""
    lines = cpuinfo.splitlines()
    name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.machine())
    vector = "AVX-512" if " avx512f" in cpuinfo else "AVX2" if " avx2" in cpuinfo else "no AVX2"
    return f"{name}, {vector}, {os.cpu_count()} cores"


def batches(x: np.ndarray, y: np.ndarray | None, batch_size: int) -> Any:
    """`x` (with targets `y`, if given) in order, in batches of `batch_size`: what
    `model.fit`, `evaluate` and `predict` take as their data (and `fit` as `validation_data`).

    Keras feeds NumPy arrays on TensorFlow through a tf.data pipeline that gathers batches in
    parallel under tf.data's autotuning. On these 2-core machines its threads took time from
    training, and tearing it down at the end of a `fit` call stalled for up to 14 s, about
    half an epoch (docs/speed.md). Here TensorFlow slices the batches in order with
    autotuning off; other backends get the same batches from a `keras.utils.PyDataset`.
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        dataset = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y)).batch(batch_size)
        options = tf.data.Options()
        options.autotune.enabled = False
        return dataset.with_options(options).prefetch(2)

    class Batches(keras.utils.PyDataset):
        def __len__(self) -> int:
            return -(-len(x) // batch_size)

        def __getitem__(self, index: int):
            part = slice(index * batch_size, (index + 1) * batch_size)
            return x[part] if y is None else (x[part], y[part])

    return Batches()
