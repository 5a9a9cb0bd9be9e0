"""Run mypy on the `kvmnet` import package as pyproject.toml's package-dir maps it.

The package is assembled from top-level folders (kvmnet/, engine/, state/, ...),
a mapping mypy cannot follow from the source tree. This script reads the mapping
from `[tool.setuptools] package-dir`, mirrors it as a tree of symlinks in a
temporary directory, runs `mypy -p kvmnet` there and prints the findings with
the real source paths. Exit status is mypy's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "kvmnet"


def package_dirs(pyproject: Path) -> dict[str, Path]:
    """The package-dir mapping: dotted package name -> source folder."""
    with pyproject.open("rb") as f:
        mapping = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    return {name: (pyproject.parent / folder).resolve() for name, folder in mapping.items()}


def build_tree(dirs: dict[str, Path], dest: Path) -> None:
    """Mirror each mapped package as a folder of symlinks to its source entries.

    A package that has mapped subpackages gets its own folder, so the
    subpackages can be placed inside it next to the source's own entries.
    """
    for name in sorted(dirs, key=lambda n: n.count(".")):
        target = dest.joinpath(*name.split("."))
        target.mkdir(parents=True, exist_ok=True)
        mapped_children = {n.rsplit(".", 1)[1] for n in dirs
                           if n.startswith(name + ".") and n.count(".") == name.count(".") + 1}
        for entry in dirs[name].iterdir():
            if entry.name in mapped_children or entry.name == "__pycache__":
                continue
            (target / entry.name).symlink_to(entry)


def real_path_rewriter(dirs: dict[str, Path]):
    """A function mapping 'kvmnet/engine/x.py' in mypy's output back to 'engine/x.py'."""
    prefixes = sorted(((name.replace(".", "/") + "/", folder) for name, folder in dirs.items()),
                      key=lambda p: -len(p[0]))

    def rewrite(line: str) -> str:
        for prefix, folder in prefixes:
            if line.startswith(prefix):
                return os.path.relpath(folder, ROOT) + "/" + line[len(prefix):]
        return line

    return rewrite


def main(argv: list[str]) -> int:
    """Build the tree, run mypy with the project's config, report in source paths."""
    dirs = package_dirs(ROOT / "pyproject.toml")
    if PACKAGE not in dirs:
        print(f"Error: pyproject.toml package-dir does not map {PACKAGE!r}", file=sys.stderr)
        return 1
    cache = ROOT / ".venv" / ".mypy_cache"
    with tempfile.TemporaryDirectory(prefix="kvmnet-typecheck-") as tmp:
        build_tree(dirs, Path(tmp))
        cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
               "--cache-dir", str(cache), "-p", PACKAGE, *argv]
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env={**os.environ, "MYPYPATH": tmp})
    rewrite = real_path_rewriter(dirs)
    for line in proc.stdout.splitlines():
        print(rewrite(line))
    sys.stderr.write(re.sub(r"\s+$", "\n", proc.stderr) if proc.stderr.strip() else "")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
