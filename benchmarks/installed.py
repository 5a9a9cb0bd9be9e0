"""Run kvmnet as an installed copy runs: with bytecode.

A development shell may set ``PYTHONDONTWRITEBYTECODE`` (this project's CI
machines do), and then every kvmnet process a benchmark starts compiles each
module it imports from source again: ≈0.15 s more per process, which is not what
an operator's installed kvmnet costs. :func:`like_installed` drops the variable
for the processes the benchmark starts and compiles the source tree once, as
``pip install`` does."""
from __future__ import annotations

import compileall
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("kvmnet", "engine", "sdk", "state", "providers")


def like_installed() -> None:
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    for name in SOURCE_DIRS:
        compileall.compile_dir(ROOT / name, quiet=1)
