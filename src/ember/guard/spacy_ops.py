"""Faster matrix products for the guard's spaCy pipeline.

thinc's ``NumpyOps.gemm`` calls blis, which on this class of CPU runs the small products of
``en_core_web_sm``'s embedding layers several times slower than numpy's OpenBLAS does on one
thread. :func:`use_numpy_matmul` swaps the ops of one pipeline component (the guard's own
``ner``; no other spaCy pipeline in the process is touched) and :func:`single_blas_thread`
keeps OpenBLAS on one thread while it runs: its thread pool would otherwise spin on a busy
machine for products this small (10× slower). Entities are unchanged (checked on 400 texts).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

_hiding = threading.Lock()


@contextmanager
def torch_hidden() -> Iterator[None]:
    """Import spaCy and thinc as if torch were not installed, unless torch is already loaded.

    thinc imports torch when it is installed, for layers the guard's CNN pipeline never uses:
    about 200 MiB of resident memory and seconds of start-up in every server. While spaCy is
    first imported and its model loaded, ``import torch`` fails (thinc records "no torch"), and
    so does ``import transformers`` (a spaCy plug-in that imported it now would leave
    transformers believing torch absent for the whole process). Afterwards both import
    normally for whoever needs them (fine-tuning, the transformers engine).
    """
    hidden = ("torch", "transformers")
    with _hiding:
        if "thinc" in sys.modules or any(name in sys.modules for name in hidden):
            yield
            return
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]
        try:
            yield
        finally:
            for name in hidden:
                if name in sys.modules and sys.modules[name] is None:
                    del sys.modules[name]


@lru_cache(maxsize=1)
def matmul_ops() -> Any:
    """thinc's ``NumpyOps`` with ``gemm`` done by ``numpy.matmul`` (thinc imported on first use:
    importing it at start-up would cost the server seconds and memory it may never need)."""
    import numpy
    from thinc.api import NumpyOps

    class MatmulOps(NumpyOps):
        def gemm(
            self,
            x: Any,
            y: Any,
            out: Any | None = None,
            trans1: bool = False,
            trans2: bool = False,
        ) -> Any:
            a = x.T if trans1 else x
            b = y.T if trans2 else y
            if out is None:
                return numpy.matmul(a, b)
            numpy.matmul(a, b, out=out)
            return out

    return MatmulOps()


def use_numpy_matmul(component: Any) -> None:
    """Give every layer of one spaCy component's model the numpy ``gemm``."""
    ops = matmul_ops()
    for node in component.model.walk():
        node.ops = ops


@lru_cache(maxsize=1)
def _openblas() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(internal_api="openblas")


@contextmanager
def single_blas_thread() -> Iterator[None]:
    """OpenBLAS on one thread for the duration (about 30 µs to set and restore)."""
    with _openblas().limit(limits=1):
        yield
