"""The language features' CLI edges through the real ``kvmnet`` command (no live
system needed): a failed validation is one Error line and exit 1, KVMNET_VAR_name
reaches validate, plan --generate-config-out refuses a file it would not read."""
from __future__ import annotations

import pytest

from tests.e2e.helpers import run_kvmnet, write_config

PORT = '''
variable "port" {
  type = number
  validation {
    condition     = var.port > 1024
    error_message = "port must be unprivileged."
  }
}
'''


def test_validation_failure_is_one_error_line(tmp_path):
    cfg = tmp_path / "cfg"
    write_config(cfg, PORT)
    code, out, err = run_kvmnet(cfg, "validate", "--var", "port=22")
    assert code == 1
    (line,) = err.strip().splitlines()
    assert line.endswith('main.hcl:4: invalid value for variable "port": port must be unprivileged.'), err


def test_environment_variable_reaches_validate(tmp_path):
    cfg = tmp_path / "cfg"
    write_config(cfg, PORT)
    code, out, err = run_kvmnet(cfg, "validate", env={"KVMNET_VAR_port": "8080"})
    assert code == 0, err
    code, out, err = run_kvmnet(cfg, "validate", env={"KVMNET_VAR_port": "80"})
    assert code == 1 and "port must be unprivileged." in err


def test_generate_config_out_needs_a_new_hcl_file_in_the_config_dir(tmp_path):
    cfg = tmp_path / "cfg"
    write_config(cfg, 'import {\n  to = network.lab\n  id = "x"\n}\n')
    (cfg / "taken.hcl").write_text("")
    for arg, message in [("out.tf", "give a new .hcl file"), ("../out.hcl", "give a new .hcl file"),
                         ("taken.hcl", "the file already exists")]:
        code, out, err = run_kvmnet(cfg, "plan", f"--generate-config-out={arg}",
                                    state=tmp_path / "s.db")
        assert code == 1 and message in err, err
        assert len(err.strip().splitlines()) == 1


def test_state_mv_of_an_address_not_in_the_state(tmp_path):
    cfg = tmp_path / "cfg"
    write_config(cfg, "")
    code, out, err = run_kvmnet(cfg, "state", "mv", "network.a", "network.b", state=tmp_path / "s.db")
    assert code == 1 and err.strip() == "Error: network.a is not in the state", err


@pytest.mark.parametrize("address", ["network.lab[0]", 'network.lab["a"]', "module.kvm01.network.lab"])
def test_generate_config_out_writes_no_block_for_an_instance_or_module_address(tmp_path, address):
    """As Terraform: no configuration is generated for an expanded resource or inside a module."""
    cfg = tmp_path / "cfg"
    write_config(cfg, f'import {{\n  to = {address}\n  id = "x"\n}}\n')
    code, out, err = run_kvmnet(cfg, "plan", "--generate-config-out=gen.hcl", state=tmp_path / "s.db")
    assert code == 1 and len(err.strip().splitlines()) == 1 and err.strip().endswith(
        f"main.hcl:1: import: cannot generate a block for {address}: as in Terraform, "
        "--generate-config-out writes blocks only for root-module resources without count or "
        "for_each; write this resource block yourself"), err
    assert not (cfg / "gen.hcl").exists()
