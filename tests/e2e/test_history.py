"""``kvmnet state history`` end to end: real applies of sysctl profiles in a
throw-away network namespace, then the history as text and as JSON."""
from __future__ import annotations

import json

import pytest

from tests.conftest import requires_root
from tests.e2e.test_sysctl_cli import Env

pytestmark = [requires_root, pytest.mark.real]


def profile(fin: int) -> str:
    return f"""
resource "sysctl_profile" "tuning" {{
  settings = {{ "net.ipv4.tcp_fin_timeout" = {fin} }}
}}
"""


def test_history_lists_each_apply_with_its_changes(ns, tmp_path):
    env = Env(ns, tmp_path)
    assert "No applies recorded" in env.ok("state", "history")
    env.write(profile(33))
    env.ok("apply", "--auto-approve")
    env.write(profile(44))
    env.ok("apply", "--auto-approve")
    env.ok("destroy", "--auto-approve")

    doc = json.loads(env.ok("state", "history", "--json"))
    entries = doc["history"]
    assert len(entries) >= 3
    first, second = entries[0], entries[1]
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    assert first["status"] == "applied" and "apply --auto-approve" in first["command"]
    assert first["changes"] == [{"address": "sysctl_profile.tuning", "action": "create"}]
    assert second["changes"] == [{"address": "sysctl_profile.tuning", "action": "update"}]
    assert second["serial_before"] > first["serial_before"]
    assert "sysctl/sysctl_profile" in second["snapshot_saved"]   # saved before the change
    assert "1 changed" in second["summary"]

    full = json.loads(env.ok("state", "history", "--json", "--full"))["history"][1]
    assert full["changes"][0]["before"]["settings"] == {"net.ipv4.tcp_fin_timeout": "33"}
    assert full["snapshot"]["sysctl/sysctl_profile"]["values"] == {"net.ipv4.tcp_fin_timeout": "33"}

    text = env.ok("state", "history")
    assert f"#{first['id']}  " in text and "  applied  serial " in text
    assert "+ sysctl_profile.tuning (create)" in text
    assert "~ sysctl_profile.tuning (update)" in text
    assert len(json.loads(env.ok("state", "history", "--json", "--limit", "1"))["history"]) == 1
