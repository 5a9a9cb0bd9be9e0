"""plan --format markdown and --metrics-file, through the real CLI against real
sysctls in a throw-away namespace."""
from __future__ import annotations

import os

import pytest

from tests.e2e.helpers import run_kvmnet, write_config

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")


def _config(d, ns, persist):
    write_config(d, f'''
        provider "sysctl" {{
          netns       = "{ns}"
          persist_dir = "{persist}"
        }}
        resource "sysctl_profile" "tuning" {{
          settings = {{ "net.core.somaxconn" = 1024 }}
        }}
    ''')


def _metrics(path) -> dict[str, float]:
    out = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def test_markdown_plan_and_metrics_file(tmp_path, ns):
    from kvmnet.sandbox.netns import in_ns
    cfg, persist, state = tmp_path / "cfg", tmp_path / "sysctl.d", tmp_path / "s.db"
    persist.mkdir()
    _config(cfg, ns, persist)
    rc, out, err = run_kvmnet(cfg, "plan", "--format", "markdown", state=state)
    assert rc == 0, err
    assert "**Plan:** 1 to add, 0 to change, 0 to destroy." in out
    assert "| ➕ create | `sysctl_profile.tuning` |" in out

    assert run_kvmnet(cfg, "apply", "--auto-approve", state=state)[0] == 0
    metrics = tmp_path / "kvmnet.prom"
    rc, out, err = run_kvmnet(cfg, "plan", "--refresh-only", "--detailed-exitcode",
                              "--metrics-file", metrics, state=state)
    assert rc == 0, err
    m = _metrics(metrics)
    assert m['kvmnet_drifted_resources{type="sysctl_profile"}'] == 0
    assert m['kvmnet_managed_resources{type="sysctl_profile"}'] == 1
    assert m["kvmnet_check_success"] == 1

    in_ns(ns, "sysctl", "-w", "net.core.somaxconn=77")
    rc, out, err = run_kvmnet(cfg, "plan", "--refresh-only", "--detailed-exitcode",
                              "--format", "markdown", "--metrics-file", metrics, state=state)
    assert rc == 2, err
    assert "### Changed outside kvmnet" in out and '"77"' in out
    assert _metrics(metrics)['kvmnet_drifted_resources{type="sysctl_profile"}'] == 1

    # a failing check (the namespace named in the config is gone) says so
    _config(cfg, "kvmnet-no-such-ns", persist)
    rc, _out, err = run_kvmnet(cfg, "plan", "--refresh-only", "--metrics-file", metrics, state=state)
    assert rc == 1
    assert _metrics(metrics)["kvmnet_check_success"] == 0
    _config(cfg, ns, persist)
    assert run_kvmnet(cfg, "destroy", "--auto-approve", state=state)[0] == 0
