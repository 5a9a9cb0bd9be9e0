"""kvmnet's expressions against OpenTofu 1.6.2, value and type, case by case.

Cases: ``cases/*.txt`` (one expression a line). Both evaluators run once per session
(see harness.py); each case is one test. OpenTofu comes from ``make install``.
"""
from __future__ import annotations

import pytest

import harness

CASES = harness.load_cases()
ALLOWED = harness.allowlist()


@pytest.fixture(scope="module")
def results():
    if not harness.TOFU.exists():
        pytest.fail(f"OpenTofu is not installed at {harness.TOFU}: run `make install`")
    exprs = [c.expr for c in CASES]
    return dict(zip(exprs, zip(harness.run_tofu(exprs), harness.run_kvmnet(exprs), strict=True)))


def test_opentofu_runs_offline():
    """The suite runs OpenTofu with no network: in a network namespace of its own
    (as root, which the suite runs as), where it still starts."""
    import os
    import subprocess
    if os.geteuid() != 0:
        pytest.fail("the differential suite runs as root, so that OpenTofu runs under unshare -n")
    cmd = harness._offline([str(harness.TOFU), "version"])
    assert cmd[:2] == ["unshare", "-n"]
    links = subprocess.run(["unshare", "-n", "ip", "-o", "link"], capture_output=True, text=True, check=True)
    assert [line.split(":")[1].strip() for line in links.stdout.splitlines()] == ["lo"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "OpenTofu v1.6.2" in p.stdout, p.stdout + p.stderr


def test_enough_cases():
    assert len(CASES) >= 1000
    assert len({c.expr for c in CASES}) == len(CASES), "a case is listed twice"


def test_allowlist_is_short_and_explained():
    assert len(ALLOWED) <= 10
    for expr, reason in ALLOWED.items():
        assert len(reason) > 20, f"{expr}: say why kvmnet differs"
        assert expr in {c.expr for c in CASES}, f"{expr}: allowlisted but not a case"


@pytest.mark.parametrize("case", CASES, ids=[c.where for c in CASES])
def test_same_as_opentofu(case, results):
    tofu, kv = results[case.expr]
    why = harness.compare(tofu, kv)
    if case.expr in ALLOWED:
        assert why is not None, f"{case.expr} now matches OpenTofu: drop it from the allowlist"
        return
    assert why is None, f"{case.where}: {case.expr}\n  {why}"
