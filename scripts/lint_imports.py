"""Run import-linter's contracts (pyproject ``[tool.importlinter]``) on the package.

grimp, which import-linter builds its graph with, reads the source tree of one
top-level package and cannot follow pyproject's ``package-dir`` mapping (engine/
-> kvmnet.engine, ...) nor the editable install's import hook. So this lays out
the package as a symlink tree in a temp dir, as ``typecheck.py`` does for mypy,
and runs ``lint-imports`` with only that tree on the path. Exit status is
lint-imports'.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from typecheck import ROOT, build_tree, package_dirs  # scripts/ is sys.path[0]


def main() -> int:
    lint = Path(sys.executable).with_name("lint-imports")
    with tempfile.TemporaryDirectory(prefix="kvmnet-lint-imports-") as tmp:
        build_tree(package_dirs(ROOT / "pyproject.toml"), Path(tmp))
        env = {**os.environ, "PYTHONPATH": tmp}
        return subprocess.call([str(lint), "--no-cache", str(ROOT / "pyproject.toml")], cwd=tmp, env=env)


if __name__ == "__main__":
    sys.exit(main())
