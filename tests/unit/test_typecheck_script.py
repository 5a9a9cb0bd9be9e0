"""scripts/typecheck.py: the package-dir mapping read from pyproject, mirrored for mypy."""
from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("typecheck", ROOT / "scripts" / "typecheck.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _project(tmp_path: Path) -> Path:
    """A project mapping pkg → pkg/, pkg.core → core/ and pkg.extra → extra/."""
    for folder, files in {"pkg": ["__init__.py", "cli.py"], "core": ["__init__.py", "walk.py"],
                          "extra": ["__init__.py"]}.items():
        (tmp_path / folder).mkdir()
        for name in files:
            (tmp_path / folder / name).write_text("")
    (tmp_path / "pkg" / "sub").mkdir()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.setuptools]\npackage-dir = {"pkg" = "pkg", "pkg.core" = "core", "pkg.extra" = "extra"}\n')
    return tmp_path


def test_every_mapped_folder_is_mirrored(tmp_path):
    tc = _script()
    (tmp_path / "src").mkdir()
    proj = _project(tmp_path / "src")
    dirs = tc.package_dirs(proj / "pyproject.toml")
    assert dirs == {"pkg": proj / "pkg", "pkg.core": proj / "core", "pkg.extra": proj / "extra"}
    out = tmp_path / "tree"
    tc.build_tree(dirs, out)
    assert (out / "pkg" / "cli.py").resolve() == proj / "pkg" / "cli.py"
    assert (out / "pkg" / "sub").resolve() == proj / "pkg" / "sub"
    assert (out / "pkg" / "core" / "walk.py").resolve() == proj / "core" / "walk.py"
    assert (out / "pkg" / "extra" / "__init__.py").resolve() == proj / "extra" / "__init__.py"


def test_findings_are_reported_in_source_paths(tmp_path):
    tc = _script()
    dirs = {"kvmnet": ROOT / "kvmnet", "kvmnet.engine": ROOT / "engine"}
    rewrite = tc.real_path_rewriter(dirs)
    assert rewrite("kvmnet/engine/walk.py:3: error: x") == "engine/walk.py:3: error: x"
    assert rewrite("kvmnet/cli.py:1: error: y") == "kvmnet/cli.py:1: error: y"
    assert rewrite("Success: no issues found") == "Success: no issues found"


def test_the_projects_mapping_covers_its_packages():
    """Each package pyproject lists lives under a mapped folder, so mypy checks it."""
    import tomllib
    tc = _script()
    dirs = tc.package_dirs(ROOT / "pyproject.toml")
    with (ROOT / "pyproject.toml").open("rb") as f:
        packages = tomllib.load(f)["tool"]["setuptools"]["packages"]
    for pkg in packages:
        assert any(pkg == name or pkg.startswith(name + ".") for name in dirs), pkg
