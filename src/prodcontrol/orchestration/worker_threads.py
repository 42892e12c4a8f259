"""One compute thread per measurement process (see :mod:`.compute`).

Kept apart from :mod:`.compute`, which imports numpy: a spawned worker unpickles its initializer
by importing the initializer's module, and the variables below only count if they are set before
numpy, SciPy and Arrow load. This module imports nothing that loads them.
"""

from __future__ import annotations

import os

# read when they load by OpenBLAS (numpy, SciPy), MKL, OpenMP, numexpr and Arrow's CPU pool
ONE_THREAD = (
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OMP_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def one_thread() -> None:
    """A measurement process's start: numeric libraries use one thread each; a variable the
    user set for the flow process (and so for its workers) is kept."""
    for name in ONE_THREAD:
        os.environ.setdefault(name, "1")
