"""The SDK's proof: a third-party provider (tests/thirdparty/kvmnet_dummy) with a
resource type of its own, registered through a real entry point, is validated,
planned, applied and destroyed by the real CLI with no built-in provider loaded.

The package is "installed" as pip would leave it: a ``kvmnet_dummy-0.1.dist-info``
with ``entry_points.txt`` beside the package on ``PYTHONPATH``, found by the same
``importlib.metadata`` discovery the CLI uses for the built-in providers.
``KVMNET_PROVIDERS=dummy`` limits discovery to it; a ``sitecustomize`` records
which kvmnet modules each CLI run imported, to show that none of
``kvmnet.providers`` was.
"""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.e2e.helpers import run_kvmnet, write_config

PACKAGE = Path(__file__).resolve().parents[1] / "thirdparty" / "kvmnet_dummy"

SITECUSTOMIZE = textwrap.dedent("""
    import atexit, json, os, sys

    def _record(path):
        with open(path, "a") as f:
            f.write(json.dumps(sorted(m for m in sys.modules if m.startswith("kvmnet"))) + "\\n")

    if os.environ.get("KVMNET_TEST_MODULES"):
        atexit.register(_record, os.environ["KVMNET_TEST_MODULES"])
""")


@pytest.fixture
def site(tmp_path) -> Path:
    """A directory on PYTHONPATH holding the dummy package and its dist-info."""
    site = tmp_path / "site"
    info = site / "kvmnet_dummy-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kvmnet-dummy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[kvmnet.providers]\ndummy = kvmnet_dummy.plugin:PLUGIN\n")
    (site / "kvmnet_dummy").symlink_to(PACKAGE)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return site


@pytest.fixture
def cli(tmp_path, site):
    modules = tmp_path / "modules.jsonl"
    env = {"PYTHONPATH": str(site), "KVMNET_PROVIDERS": "dummy", "KVMNET_TEST_MODULES": str(modules)}

    def run(*args, cfg=tmp_path / "cfg"):
        return run_kvmnet(cfg, *args, state=tmp_path / "state.db", env=env)
    run.modules = modules
    return run


def _config(tmp_path, body: str) -> Path:
    files = tmp_path / "files"
    files.mkdir(exist_ok=True)
    return write_config(tmp_path / "cfg", f'provider "dummy" {{\n  directory = "{files}"\n}}\n\n' + body)


def test_plan_apply_destroy_with_only_the_third_party_provider(tmp_path, cli):
    files = tmp_path / "files"
    _config(tmp_path, """
        resource "dummy_file" "greeting" {
          content = "hello"
        }

        resource "dummy_file" "copy" {
          name    = "copy-of-${dummy_file.greeting.name}"
          content = "${dummy_file.greeting.content}, again"
          mode    = "0600"
        }
    """)
    rc, out, err = cli("validate")
    assert rc == 0, err
    assert "valid (2 resource instances)" in out

    rc, out, err = cli("plan")
    assert rc == 0, err
    assert "dummy_file.greeting will be created" in out and "2 to add" in out

    rc, out, err = cli("apply", "--auto-approve")
    assert rc == 0, err
    greeting, copy = files / "greeting", files / "copy-of-greeting"
    assert greeting.read_text().splitlines()[1] == "hello"
    assert copy.read_text().splitlines()[1] == "hello, again"
    assert greeting.read_text().startswith("kvmnet:") and copy.stat().st_mode & 0o777 == 0o600

    rc, out, err = cli("plan", "--detailed-exitcode")
    assert rc == 0, out + err
    assert "No changes" in out

    copy.write_text(copy.read_text().replace("again", "drifted"))
    rc, out, err = cli("plan", "--detailed-exitcode")
    assert rc == 2, out + err
    assert "dummy_file.copy will be updated in-place" in out

    rc, out, err = cli("destroy", "--auto-approve")
    assert rc == 0, err
    assert sorted(files.iterdir()) == []

    runs = [json.loads(line) for line in cli.modules.read_text().splitlines()]
    assert len(runs) == 6
    for loaded in runs:
        assert "kvmnet.engine.registry" in loaded
        assert [m for m in loaded if m.startswith("kvmnet.providers")] == []
    assert any("kvmnet.engine.walk" in loaded for loaded in runs)


def test_the_third_party_schema_rules_and_claims_are_checked(tmp_path, cli):
    _config(tmp_path, """
        resource "dummy_file" "a" {
          content = "x"
          mode    = "0777"
        }

        resource "dummy_file" "b" {
          content = "two\\nlines"
        }

        resource "dummy_file" "c" {
          colour = "red"
        }
    """)
    rc, out, err = cli("validate")
    assert rc == 1
    assert 'main.hcl:8: dummy_file.a: mode = "0777" is not allowed: must be one of 0600, 0644' in err
    assert 'main.hcl:12: dummy_file.b: content = "two\\nlines" must fit on one line' in err
    assert 'dummy_file.c: missing required attribute "content"' in err
    assert 'main.hcl:16: dummy_file.c: unknown attribute "colour"' in err


def test_the_third_party_claims_are_checked_across_instances(tmp_path, cli):
    _config(tmp_path, """
        resource "dummy_file" "a" {
          content = "x"
        }

        resource "dummy_file" "b" {
          name    = "a"
          content = "y"
        }
    """)
    rc, out, err = cli("validate")
    assert rc == 1
    assert err.strip().endswith('main.hcl:11: dummy_file.b: name: file "a" is already written by dummy_file.a')


def test_a_built_in_type_is_unknown_without_its_provider(tmp_path, cli):
    _config(tmp_path, 'resource "bridge" "br0" {}\n')
    rc, out, err = cli("validate")
    assert rc == 1
    assert 'unknown resource type "bridge"; known types: dummy_file' in err


def test_a_provider_named_but_not_installed_is_an_error(tmp_path, site):
    write_config(tmp_path / "cfg", 'resource "dummy_file" "a" {\n  content = "x"\n}\n')
    rc, out, err = run_kvmnet(tmp_path / "cfg", "validate",
                              env={"PYTHONPATH": str(site), "KVMNET_PROVIDERS": "dummy,nosuch"})
    assert rc == 1
    assert err.strip().splitlines() == [
        "Error: KVMNET_PROVIDERS names provider plugins that are not installed: nosuch "
        "(entry point group kvmnet.providers)"]


def test_a_malformed_import_id_is_refused_before_anything_is_read(tmp_path):
    """The type's import-ID parser (``ResourceType.parse_id``) runs first: no
    provider is started and no state is written."""
    cfg = write_config(tmp_path / "cfg", """
        provider "libvirt" {
          uri = "test:///nonexistent"
        }

        resource "nic_attachment" "web" {
          domain  = "web"
          network = "default"
        }
    """).parent
    state = tmp_path / "state.db"
    rc, out, err = run_kvmnet(cfg, "import", "nic_attachment.web", "no-slash", state=state)
    assert rc == 1
    assert err.strip().splitlines() == ["Error: a nic_attachment ID is DOMAIN/MAC, not 'no-slash'"]
    assert not state.exists()
