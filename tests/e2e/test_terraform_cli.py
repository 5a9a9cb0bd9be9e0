"""The CLI as Terraform users type it, on a config of variables, locals and outputs
(no provider is started, so no root is needed): outputs kept by apply, ``output``,
``show -json``, ``console``, ``fmt -diff -recursive``, and ``validate`` checking
provider blocks."""
from __future__ import annotations

import json

from tests.e2e.helpers import run_kvmnet, write_config

CONFIG = """
variable "n" {
  type    = number
  default = 2
}

locals {
  hosts = [for i in range(var.n) : "kvm${i}"]
}

output "hosts" {
  value = local.hosts
}

output "first" {
  value = local.hosts[0]
}
"""


def test_outputs_are_kept_by_apply_and_printed_as_terraform_does(tmp_path):
    cfg = tmp_path / "cfg"
    write_config(cfg, CONFIG)
    state = tmp_path / "s.db"
    rc, out, err = run_kvmnet(cfg, "output", state=state)
    assert rc == 0 and out == "" and "No outputs found" in err
    rc, out, err = run_kvmnet(cfg, "plan", "-detailed-exitcode", state=state)
    assert rc == 2, err                          # output changes are changes
    assert '+ hosts = ["kvm0", "kvm1"]' in out and "save these new output values" in out
    doc = json.loads(run_kvmnet(cfg, "plan", "-json", state=state)[1])
    assert doc["output_changes"]["first"]["actions"] == ["create"]
    assert doc["prior_state"]["values"]["outputs"] == {}
    rc, out, err = run_kvmnet(cfg, "apply", "-auto-approve", state=state)
    assert rc == 0, err
    assert out.rstrip().endswith('Outputs:\n\nfirst = "kvm0"\nhosts = ["kvm0", "kvm1"]'), out
    rc, out, _ = run_kvmnet(cfg, "plan", "-detailed-exitcode", state=state)
    assert rc == 0 and "No changes." in out
    assert run_kvmnet(cfg, "output", state=state)[1] == 'first = "kvm0"\nhosts = ["kvm0", "kvm1"]\n'
    assert run_kvmnet(cfg, "output", "first", state=state)[1] == '"kvm0"\n'
    assert run_kvmnet(cfg, "output", "-raw", "first", state=state)[1] == "kvm0\n"
    assert json.loads(run_kvmnet(cfg, "output", "-json", "hosts", state=state)[1]) == ["kvm0", "kvm1"]
    every = json.loads(run_kvmnet(cfg, "output", "--json", state=state)[1])
    assert every["first"] == {"sensitive": False, "type": "string", "value": "kvm0"}
    assert run_kvmnet(cfg, "show", state=state)[1] == 'Outputs:\n\nfirst = "kvm0"\nhosts = ["kvm0", "kvm1"]\n'
    shown = json.loads(run_kvmnet(cfg, "show", "-json", state=state)[1])
    assert shown["values"]["outputs"]["hosts"] == {"sensitive": False, "value": ["kvm0", "kvm1"],
                                                   "type": ["tuple", ["string", "string"]]}
    # a plan shows an output only when its value changes
    rc, out, _ = run_kvmnet(cfg, "-var", "n=3", "plan", state=state)
    assert '~ hosts = ["kvm0", "kvm1"] -> ["kvm0", "kvm1", "kvm2"]' in out and "first" not in out
    doc = json.loads(run_kvmnet(cfg, "plan", "-var", "n=3", "-json", state=state)[1])
    assert doc["output_changes"]["first"]["actions"] == ["no-op"]
    assert doc["output_changes"]["hosts"]["actions"] == ["update"]
    assert doc["variables"] == {"n": {"value": 3}}


def test_output_errors(tmp_path):
    cfg = tmp_path / "cfg"
    write_config(cfg, CONFIG)
    state = tmp_path / "s.db"
    assert run_kvmnet(cfg, "apply", "--auto-approve", state=state)[0] == 0
    rc, out, err = run_kvmnet(cfg, "output", "host", state=state)
    assert rc == 1 and err.strip().splitlines() == [
        "Error: no output named 'host' in the state (did you mean \"hosts\"?): an output gets its "
        "value when kvmnet apply runs with it in the configuration"]
    rc, _, err = run_kvmnet(cfg, "output", "--raw", "hosts", state=state)
    assert rc == 1 and "--raw cannot print it" in err
    rc, _, err = run_kvmnet(cfg, "output", "--raw", state=state)
    assert rc == 1 and err.startswith("Error: --raw needs an output NAME")
    rc, _, err = run_kvmnet(cfg, "output", "--raw", "--json", "first", state=state)
    assert rc == 1 and "cannot be combined" in err


def test_console_reads_config_and_state(tmp_path):
    cfg = tmp_path / "cfg"
    write_config(cfg, CONFIG)
    rc, out, err = run_kvmnet(cfg, "console", input="local.hosts[1]\nvar.n * 10\ntype(local.hosts)\n")
    assert rc == 0, err
    assert out == '"kvm1"\n20\ntuple([\n    string,\n    string,\n])\n'
    rc, out, err = run_kvmnet(cfg, "console", input="var.nope\n1 + 1\n")
    assert rc == 1 and out == "2\n"
    assert err.startswith("Error: <stdin>:1: ") and len(err.strip().splitlines()) == 1


def test_type_is_refused_outside_the_console(tmp_path):
    cfg = tmp_path / "cfg"
    write_config(cfg, 'output "t" {\n  value = type(1)\n}\n')
    rc, _, err = run_kvmnet(cfg, "validate")
    assert rc == 1 and "main.hcl:2" in err and "type" in err


def test_fmt_diff_and_recursive(tmp_path):
    cfg = tmp_path / "cfg"
    write_config(cfg, "locals {\nx=1\n}\n")
    write_config(cfg / "hosts" / "kvm01", "locals {\ny=2\n}\n")
    write_config(cfg / ".hidden", "locals {\nz=3\n}\n")
    rc, out, _ = run_kvmnet(cfg, "fmt", "-check", "-diff", "-recursive")
    assert rc == 1
    assert "--- old/main.hcl" in out and "-x=1\n+  x = 1\n" in out
    assert "hosts/kvm01/main.hcl" in out and ".hidden" not in out
    rc, out, _ = run_kvmnet(cfg, "fmt", "--check")
    assert rc == 1 and "hosts" not in out                  # not recursive by default
    rc, out, _ = run_kvmnet(cfg, "fmt", "--recursive", "--diff")
    assert rc == 0 and "+  y = 2" in out
    assert (cfg / "hosts" / "kvm01" / "main.hcl").read_text() == "locals {\n  y = 2\n}\n"
    assert (cfg / ".hidden" / "main.hcl").read_text() == "locals {\nz=3\n}\n"
    assert run_kvmnet(cfg, "fmt", "-check", "-recursive")[0] == 0


def test_validate_checks_provider_blocks_with_suggestions(tmp_path):
    cfg = tmp_path / "cfg"
    write_config(cfg, 'provider "sysctl" {\n  netns = "x"\n  persist_dirr = "/tmp"\n}\n')
    rc, out, err = run_kvmnet(cfg, "validate")
    assert rc == 1 and out == ""
    (line,) = err.strip().splitlines()
    assert line.endswith('main.hcl:3: provider.sysctl: unknown attribute "persist_dirr" in provider '
                         '"sysctl" (did you mean "persist_dir"?)'), err
    write_config(cfg, 'resource "netwrk" "a" {\n}\n')
    rc, _, err = run_kvmnet(cfg, "validate")
    assert rc == 1 and 'main.hcl:1' in err and '(did you mean "network"?)' in err


def test_validate_and_plan_report_provider_and_resource_errors_in_one_run(tmp_path):
    """A typo in a provider block is reported together with the resources' errors,
    each with FILE:LINE and its suggestion; nothing is written."""
    cfg = tmp_path / "cfg"
    write_config(cfg, 'resource "bridge" "b" {\n  nmae = "br0"\n}\n\n'
                      'provider "sysctl" {\n  netns = "x"\n  persist_dirr = "/tmp"\n}\n')
    state = tmp_path / "s.db"
    for args in (["validate"], ["plan", "--refresh=false"]):
        rc, out, err = run_kvmnet(cfg, *args, state=state)
        assert rc == 1 and out == "", (args, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 2, (args, err)
        assert 'main.hcl:2: bridge.b: unknown attribute "nmae"' in lines[0] and '"name"' in lines[0], err
        assert lines[1].endswith('main.hcl:7: provider.sysctl: unknown attribute "persist_dirr" in provider '
                                 '"sysctl" (did you mean "persist_dir"?)'), err
    assert not state.exists()
    rc, _, err = run_kvmnet(cfg, "plna")
    assert rc == 1 and "Did you mean 'plan'?" in err


def test_a_syntax_error_points_at_the_unclosed_block(tmp_path):
    cfg = tmp_path / "cfg"
    write_config(cfg, 'locals {\n  a = 1\n}\n\nresource "network" "n" {\n  name = "n"\n\n\n')
    rc, _, err = run_kvmnet(cfg, "validate")
    assert rc == 1 and "main.hcl:5: syntax error" in err and "never closed" in err, err


PROFILE = """
resource "sysctl_profile" "a" {{
  settings = {{ "net.ipv4.ip_forward" = 1, "net.ipv4.nope_key" = 1 }}
}}

provider "sysctl" {{
  netns       = "{ns}"
  persist_dir = "{dir}"
}}
"""


def test_provider_refusals_at_plan_time_point_at_file_line(tmp_path):
    import os

    import pytest
    if os.geteuid() != 0:
        pytest.skip("needs root (a network namespace)")
    from kvmnet.sandbox.netns import netns
    cfg = tmp_path / "cfg"
    with netns("kvc") as ns:
        write_config(cfg, PROFILE.format(ns=ns, dir=tmp_path / "sysctl.d"))
        rc, _, err = run_kvmnet(cfg, "plan", state=tmp_path / "s.db")
        assert rc == 1
        (line,) = err.strip().splitlines()
        assert line.startswith("Error: ") and line.endswith(
            f'main.hcl:1: sysctl_profile.a: unknown sysctl key "net.ipv4.nope_key" in network namespace {ns}'), err
    # the namespace is gone: the provider block is where it went wrong
    rc, _, err = run_kvmnet(cfg, "plan", state=tmp_path / "s.db")
    assert rc == 1 and f"main.hcl:5: provider.sysctl: network namespace '{ns}' does not exist" in err, err
