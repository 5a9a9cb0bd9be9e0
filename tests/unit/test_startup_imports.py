"""What a command imports at start-up, checked structurally (no timing): ``kvmnet
validate`` of an empty directory and ``kvmnet --help`` must not load the planner,
the walk, the function table, a provider or a provider's library. Each check runs
kvmnet in a fresh interpreter and reads its ``sys.modules`` afterwards. Also: the
lazily loaded command registry (kvmnet/cli.py) names every command defined, and
the SDK's lazily loaded names agree with its modules."""
from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

import kvmnet.commands
import kvmnet.sdk
from kvmnet.cli import cli

# run kvmnet's main() with ARGV in DIR, then print the loaded module names as JSON
_PROBE = """
import json, os, sys
os.chdir(sys.argv[1])
from kvmnet.cli import main
rc = main(sys.argv[2:])
print(json.dumps({"rc": rc, "modules": sorted(sys.modules)}))
"""

# never needed to check an empty directory, nor to print the help
HEAVY = [
    "kvmnet.engine.walk", "kvmnet.engine.plan.planner", "kvmnet.engine.operations",
    "kvmnet.engine.reconcile", "kvmnet.engine.render", "kvmnet.engine.expr.functions.encoding",
    "kvmnet.engine.expr.functions.strings", "kvmnet.providers", "kvmnet.state", "kvmnet.sdk.provider",
    "kvmnet.sdk.probes", "networkx", "psycopg", "libvirt", "pyroute2", "jsonschema", "lark", "hcl2",
    "yaml", "re2", "sqlite3", "sqlite_utils", "importlib.metadata", "concurrent.futures", "rich.console",
]


def _loaded(tmp_path: Path, *argv: str) -> tuple[set[str], str]:
    r = subprocess.run([sys.executable, "-c", _PROBE, str(tmp_path), *argv],
                       capture_output=True, text=True, timeout=60)
    *printed, last = r.stdout.strip().splitlines()
    got = json.loads(last)
    assert got["rc"] == 0, (r.stdout, r.stderr)
    return set(got["modules"]), "\n".join(printed)


def _heavy(modules: set[str], names: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in names))


def test_validate_of_an_empty_directory_loads_only_the_front_end(tmp_path):
    modules, out = _loaded(tmp_path, "validate")
    assert "Success! The configuration is valid (0 resource instances)." in out
    assert "kvmnet.engine.prepare" in modules      # it did run the front end
    assert _heavy(modules, HEAVY) == []
    assert not {m for m in modules if m.startswith("kvmnet.commands.")} - {
        "kvmnet.commands.common", "kvmnet.commands.validate_cmd"}


def test_help_loads_the_command_modules_and_no_engine(tmp_path):
    modules, out = _loaded(tmp_path, "--help")
    for name in ("validate", "plan", "apply", "fleet", "state", "agent", "force-unlock"):
        assert f"\n  {name} " in out
    assert _heavy(modules, HEAVY + ["kvmnet.engine"]) == []


def _tree(group: click.Group, path: str = "") -> dict[str, click.Command]:
    """Every command below ``group`` by its full name, each loaded."""
    out: dict[str, click.Command] = {}
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, f"{path}{name} is registered but does not load"
        out[f"{path}{name}"] = cmd
        if isinstance(cmd, click.Group):
            out.update(_tree(cmd, f"{path}{name} "))
    return out


def test_every_command_defined_is_registered():
    """A command module's click command that no registry names would be silently
    missing from the CLI."""
    reachable = {id(c) for c in _tree(cli).values()}
    for info in pkgutil.iter_modules(kvmnet.commands.__path__):
        module = importlib.import_module(f"kvmnet.commands.{info.name}")
        for attr, value in vars(module).items():
            defined_here = getattr(getattr(value, "callback", None), "__module__", None) == module.__name__
            if isinstance(value, click.Command) and defined_here:
                assert id(value) in reachable, f"kvmnet.commands.{info.name}.{attr} is in no registry"


def test_an_unknown_command_is_suggested_among_unloaded_ones(capsys):
    from kvmnet.cli import main
    assert main(["valdate"]) == 1
    assert "Did you mean 'validate'?" in capsys.readouterr().err
    assert main(["fleet", "stauts"]) == 1
    assert "Did you mean 'status'?" in capsys.readouterr().err


def test_parallelism_help_names_the_walks_default():
    from kvmnet.engine.walk import DEFAULT_PARALLELISM
    opt = next(p for p in _tree(cli)["apply"].params if p.name == "parallelism")
    assert opt.default is None and f"(default {DEFAULT_PARALLELISM})" in (opt.help or "")


def _type_checking_imports() -> dict[str, str]:
    tree = ast.parse(Path(kvmnet.sdk.__file__).read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    return {a.name: node.module.lstrip(".") for node in block.body if isinstance(node, ast.ImportFrom)
            for a in node.names if node.module}


@pytest.mark.parametrize("name", kvmnet.sdk.__all__)
def test_sdk_names_load_from_their_module(name):
    home = kvmnet.sdk._HOME[name]
    assert _type_checking_imports()[name] == home
    assert getattr(kvmnet.sdk, name) is getattr(importlib.import_module(f"kvmnet.sdk.{home}"), name)


def test_sdk_name_lists_agree():
    assert set(kvmnet.sdk._HOME) == set(kvmnet.sdk.__all__) == set(_type_checking_imports())
    with pytest.raises(AttributeError):
        kvmnet.sdk.NoSuchName  # noqa: B018
