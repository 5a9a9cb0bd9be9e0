"""Run import-linter's contracts (pyproject ``[tool.importlinter]``) on the package.

The package is spread over top-level folders mapped by pyproject ``package-dir``
(engine/ -> kvmnet.engine, ...), and an editable install finds them through an
import hook, which grimp does not follow: it reads one directory tree. So this
lays out that tree with symlinks in a temp dir, as a wheel would install it, and
runs ``lint-imports`` with only that tree on the path.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lay_out(dest: Path) -> None:
    """Symlink every mapped package folder to where its dotted name puts it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    mapping = config["tool"]["setuptools"]["package-dir"]
    for name in sorted(mapping, key=lambda n: n.count(".")):
        source = ROOT / mapping[name]
        target = dest.joinpath(*name.split("."))
        if name.count(".") == 0:
            target.mkdir(parents=True)
            for entry in source.iterdir():
                if entry.name != "__pycache__":
                    (target / entry.name).symlink_to(entry)
        else:
            target.symlink_to(source)


def main() -> int:
    lint = Path(sys.executable).with_name("lint-imports")
    with tempfile.TemporaryDirectory(prefix="kvmnet-lint-") as tmp:
        lay_out(Path(tmp))
        env = {**os.environ, "PYTHONPATH": tmp}
        return subprocess.call([str(lint), "--no-cache", str(ROOT / "pyproject.toml")],
                               cwd=tmp, env=env)


if __name__ == "__main__":
    sys.exit(main())
