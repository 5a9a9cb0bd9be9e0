"""kvmnet fmt [--check]: rewrite the config files in canonical layout.

Every ``*.hcl`` file of the config directory (``*.vars.hcl`` included) is formatted
with :func:`kvmnet.engine.fmt.format_hcl`. A file is written only when it parses
before, and parses to the same values after (a formatter must never change meaning);
otherwise the error is printed with FILE:LINE and the run exits 1.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import click

from kvmnet.cli import Ctx, KvmnetFailure, cli, error_line
from kvmnet.sdk.files import atomic_write

pass_ctx = click.make_pass_decorator(Ctx)


@dataclass
class FmtOutcome:
    display: str
    path: Path
    original: str
    formatted: str | None = None     # None: not formatted because of ``errors``
    errors: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.formatted is not None and self.formatted != self.original


def config_files(directory: str) -> list[Path]:
    """Every ``*.hcl`` file of ``directory`` (not recursive), sorted."""
    return sorted(p for p in Path(directory).glob("*.hcl") if p.is_file())


def format_file(path: Path, display: str) -> FmtOutcome:
    """Format one file's text, refusing anything that does not parse or whose
    meaning would change. Writes nothing."""
    from kvmnet.engine.config.hcl import parse_text
    from kvmnet.engine.fmt import format_hcl, same_meaning

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return FmtOutcome(display, path, "", errors=(f"{display}: cannot read: {e}",))
    before = parse_text(text, display)
    if before.errors:
        return FmtOutcome(display, path, text, errors=tuple(str(d) for d in before.errors))
    formatted = format_hcl(text)
    if formatted == text:
        return FmtOutcome(display, path, text, formatted)
    after = parse_text(formatted, display)
    if after.errors or not same_meaning(before, after):
        why = "; ".join(str(d.message) for d in after.errors) or "the values would differ"
        return FmtOutcome(display, path, text, errors=(
            f"{display}: not formatted: the canonical layout would change its meaning ({why}); "
            "this is a kvmnet bug, please report it with the file",))
    return FmtOutcome(display, path, text, formatted)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` (temp file in the same directory, then rename),
    keeping its mode."""
    atomic_write(path, text, path.stat().st_mode & 0o7777)


@cli.command(name="fmt")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 listing files that are not formatted")
@pass_ctx
def fmt(ctx: Ctx, check: bool):
    """Rewrite the config files in canonical layout."""
    files = config_files(ctx.dir)
    outcomes = [format_file(p, os.path.join(ctx.dir, p.name) if ctx.dir != "." else p.name)
                for p in files]
    failed = False
    for o in outcomes:
        for e in o.errors:
            ctx.err(error_line(e))
            failed = True
    changed = [o for o in outcomes if o.changed]
    if check:
        for o in changed:
            click.echo(o.display)
        if changed or failed:
            raise KvmnetFailure()
        return
    for o in changed:
        assert o.formatted is not None    # `changed` implies formatted
        write_atomically(o.path, o.formatted)
        click.echo(o.display)
    if failed:
        raise KvmnetFailure()
