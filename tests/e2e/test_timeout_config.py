"""The ``timeout`` of a provider block and ``KVMNET_TIMEOUT``: bad values are one
clear error before anything is read or changed (no root needed: the providers
fail to start before they touch their namespace)."""
from __future__ import annotations

import pytest

from tests.e2e.helpers import file_fingerprint, run_kvmnet, write_config

CONFIG = """
provider "sysctl" {{
  netns       = "kvmnet-no-such-ns"
  persist_dir = "{persist}"
{extra}}}
resource "sysctl_profile" "a" {{
  settings = {{ "net.ipv4.ip_forward" = 1 }}
}}
"""


def _plan(tmp_path, extra="", env=None):
    write_config(tmp_path / "cfg", CONFIG.format(persist=tmp_path / "sysctl.d", extra=extra))
    state = tmp_path / "s.db"
    rc, out, err = run_kvmnet(tmp_path / "cfg", "plan", state=state, env=env)
    assert file_fingerprint(state) is None
    return rc, out, err


@pytest.mark.parametrize("value, message", [
    ("0", "timeout: 0 is less than or equal to the minimum of 0"),
    ("-1", "timeout: -1 is less than or equal to the minimum of 0"),
    ("7200", "timeout: 7200 is greater than the maximum of 3600"),
    ('"soon"', "timeout: 'soon' is not of type 'number'"),
])
def test_bad_provider_timeout_is_a_file_line_error(tmp_path, value, message):
    rc, out, err = _plan(tmp_path, f"  timeout = {value}\n")
    assert rc == 1
    assert f"main.hcl:4: provider.sysctl: {message}" in err, err      # the timeout line
    assert "Traceback" not in err


@pytest.mark.parametrize("value, message", [
    ("abc", "KVMNET_TIMEOUT='abc' is not a number of seconds"),
    ("0", "KVMNET_TIMEOUT='0': a timeout is more than 0 and at most 3600 seconds"),
    ("nan", "KVMNET_TIMEOUT='nan': a timeout is more than 0 and at most 3600 seconds"),
])
def test_bad_env_timeout_is_one_error(tmp_path, value, message):
    rc, out, err = _plan(tmp_path, env={"KVMNET_TIMEOUT": value})
    assert rc == 1
    assert err.strip().splitlines() == [f"Error: cannot start provider: {message}"], err


def test_provider_timeout_wins_over_the_environment(tmp_path):
    rc, out, err = _plan(tmp_path, "  timeout = 5\n", env={"KVMNET_TIMEOUT": "abc"})
    assert rc == 1       # it gets as far as the namespace, which does not exist
    assert "KVMNET_TIMEOUT" not in err and "kvmnet-no-such-ns" in err, err


def test_from_env_default_and_value():
    from kvmnet.providers.timeouts import DEFAULT, from_env, timeout_of
    assert from_env({}) == DEFAULT == 30.0
    assert from_env({"KVMNET_TIMEOUT": " 2.5 "}) == 2.5
    assert timeout_of({"timeout": 4}) == 4.0


def test_keepalive_covers_the_timeout():
    from kvmnet.providers.libvirt.lv import keepalive
    for t, want in ((2, (1, 1)), (30, (5, 5)), (0.5, (1, 1)), (7, (4, 1))):
        assert keepalive(t) == want
