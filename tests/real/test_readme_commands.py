"""Every command the README shows, run in both spellings — kvmnet's (``--out F``,
global options before the command) and Terraform's (``-out=F``, ``-chdir=DIR``
first, options after the command) — against the README's example config in a real
sandbox (a fresh libvirtd in its namespace per spelling; every provider pointed at
that namespace, every file in a temporary directory): the same exit code and the
same output, once run-specific names (namespaces, temporary paths, UUIDs, times,
PIDs) are masked. The commands are found in README.md itself, so a command added
there is run here."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from tests.readme.commands import readme_commands, spell, split

pytestmark = [pytest.mark.real, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("libvirtd"),
                                 reason="needs root and libvirtd")]

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()

# the README's commands that must succeed on its example config (the others may fail,
# e.g. `apply` with no terminal to confirm on, but the same way in both spellings)
MUST_SUCCEED = {
    "kvmnet validate", "kvmnet apply --auto-approve", "kvmnet plan --json", "kvmnet plan --out tonight.plan",
    "kvmnet show tonight.plan", "kvmnet show --json tonight.plan", "kvmnet show --json", "kvmnet output",
    "kvmnet output --json", "kvmnet output --raw lab_bridge", "kvmnet state list",
    "kvmnet state show network.my_nat", "kvmnet graph --format dot", "kvmnet graph --format mermaid",
    "kvmnet plan --format markdown", "kvmnet plan --timings", "kvmnet sandbox up", "kvmnet sandbox down",
    "kvmnet console", "kvmnet state history", "kvmnet apply tonight.plan",
}


def example_config(uri: str, ns: str, tmp: Path) -> str:
    """The README's example config (its first ``hcl`` block), its libvirt provider
    pointed at the sandbox, and every host-level provider at the sandbox's namespace."""
    start = README.index("```hcl", README.index("## The language")) + len("```hcl\n")
    text = README[start:README.index("```", start)]
    assert 'uri = "qemu:///system"' in text
    text = text.replace('uri = "qemu:///system"', f'uri = "{uri}"')
    return text + f"""
provider "nftables" {{
  netns = "{ns}"
}}

provider "iptables" {{
  netns = "{ns}"
}}

provider "iproute" {{
  netns = "{ns}"
}}

provider "netplan" {{
  netns    = "{ns}"
  root_dir = "{tmp}/netplan-root"
}}

provider "sysctl" {{
  netns       = "{ns}"
  persist_dir = "{tmp}/sysctl.d"
}}
"""


def safe(words: list[str], tmp: Path) -> list[str]:
    """Any absolute path outside the run's directory (``--metrics-file
    /var/lib/node_exporter/kvmnet.prom``) moved into it: nothing is written on the host."""
    return [str(tmp / "host" / w.lstrip("/").replace("/", "_")) if w.startswith("/") else w for w in words]


_MASKS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "UUID"),
    (re.compile(r"\bk(?:vl|lc|lg|vt)-[0-9a-f]{8}\b"), "NS"),
    (re.compile(r"/tmp/kvmnet-sandbox-[A-Za-z0-9_]+"), "SBTMP"),
    (re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d| UTC)?"), "TIME"),
    (re.compile(r"\s*\b\d+(?:\.\d+)?\s?(?:ms|s)\b"), " DUR"),
    (re.compile(r"\bpid \d+(?:, \d+)*"), "pid N"),
    (re.compile(r"\b(pid|pid_start|boot_id)\"?: ?\"?[0-9a-f-]+"), r"\1: N"),
    (re.compile(r"\b[0-9a-f]{12,}\b"), "HEX"),
    (re.compile(r"\b52:54:00(?::[0-9a-f]{2}){3}\b"), "MAC"),
    (re.compile(r"\bvnet\d+\b"), "vnetN"),
]


def typed_flags(text: str) -> str:
    """The history records each run's command line as typed: ``-out=F`` read as ``--out F``."""
    return re.sub(r"(?<=\s)-{1,2}([a-z][a-z-]+)=?", r"--\1 ", text).replace("  ", " ")


def mask(text: str, tmp: Path) -> str:
    text = text.replace(str(tmp), "TMP")
    for rx, repl in _MASKS:
        text = rx.sub(repl, text)
    return text


def run_all(tmp: Path, terraform: bool, commands: list[str], table) -> list[tuple[int, str, str]]:
    from kvmnet.sandbox.libvirtd import LibvirtSandbox
    cfg = tmp / "cfg"
    (tmp / "netplan-root" / "etc" / "netplan").mkdir(parents=True)
    (tmp / "sysctl.d").mkdir()
    (tmp / "host").mkdir()
    cfg.mkdir()
    env = dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=str(tmp / "cache"),
               KVMNET_STATE=str(tmp / "kvmnet.state.db"), KVMNET_SANDBOX_RECORD=str(tmp / "sandbox.json"))
    results = []
    with LibvirtSandbox() as sb:
        sb.define_default_network()
        (cfg / "main.hcl").write_text(example_config(sb.uri, sb.netns, tmp))
        try:
            for command in commands:
                argv = spell(safe(split(command), tmp), table, terraform)
                try:
                    cp = subprocess.run([sys.executable, "-m", "kvmnet", *argv], cwd=cfg, env=env,
                                        capture_output=True, text=True, input="", timeout=120)
                    out, err = mask(cp.stdout, tmp), mask(cp.stderr, tmp)
                    if command.startswith("kvmnet state history"):
                        out = typed_flags(out)
                    results.append((cp.returncode, out, err))
                except subprocess.TimeoutExpired:
                    results.append((-1, "", f"timed out: {argv}"))
        finally:
            if (tmp / "sandbox.json").exists():
                subprocess.run([sys.executable, "-m", "kvmnet", "sandbox", "down"], env=env,
                               capture_output=True, timeout=120)
    return results


def test_every_readme_command_in_both_spellings(tmp_path):
    from kvmnet.argv import option_table
    from kvmnet.cli import cli
    table = option_table(cli)
    commands = readme_commands(README)
    assert len(commands) > 40 and MUST_SUCCEED <= set(commands), sorted(MUST_SUCCEED - set(commands))
    # the two spellings of each command are two different command lines
    for c in commands:
        words = split(c)
        if any(w.startswith("-") for w in words):
            assert spell(words, table, False) != spell(words, table, True), c
    double = run_all(tmp_path / "double", False, commands, table)
    single = run_all(tmp_path / "single", True, commands, table)
    failed = [(c, r) for c, r in zip(commands, double, strict=True) if c in MUST_SUCCEED and r[0] != 0]
    assert not failed, failed
    differ = [(c, spell(split(c), table, True), d, s)
              for c, d, s in zip(commands, double, single, strict=True) if d != s]
    assert not differ, differ
    assert isinstance(cli, click.Group)
