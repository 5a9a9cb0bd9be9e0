"""kvmnet fmt [--check] [--diff] [--recursive]: rewrite the config files in canonical layout.

Every ``*.hcl`` file of the config directory (``*.vars.hcl`` included; with
``--recursive`` those of its subdirectories too, hidden ones skipped) is formatted
with :func:`kvmnet.engine.fmt.format_hcl`; ``--diff`` prints a unified diff of each
change, as Terraform's ``fmt -diff`` does. A file is written only when it parses
before, and parses to the same values after (a formatter must never change meaning);
otherwise the error is printed with FILE:LINE and the run exits 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from kvmnet.cli import Ctx, KvmnetFailure, error_line
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


def config_files(directory: str, recursive: bool = False) -> list[Path]:
    """Every ``*.hcl`` file of ``directory`` (of its non-hidden subdirectories too
    with ``recursive``), sorted."""
    root = Path(directory)
    found = root.rglob("*.hcl") if recursive else root.glob("*.hcl")
    return sorted(p for p in found if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts[:-1]))


def unified_diff(o: FmtOutcome) -> str:
    """The change ``fmt`` makes to one file, as ``diff -u`` prints it."""
    import difflib
    assert o.formatted is not None
    name = o.display.lstrip("/")
    return "".join(difflib.unified_diff(o.original.splitlines(keepends=True),
                                        o.formatted.splitlines(keepends=True),
                                        fromfile=f"old/{name}", tofile=f"new/{name}"))


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


@click.command(name="fmt")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 listing files that are not formatted")
@click.option("--diff", "show_diff", is_flag=True, help="Print a unified diff of each change")
@click.option("--recursive", is_flag=True, help="Also format the files of subdirectories")
@pass_ctx
def fmt(ctx: Ctx, check: bool, show_diff: bool, recursive: bool):
    """Rewrite the config files in canonical layout."""
    root = Path(ctx.dir)
    files = config_files(ctx.dir, recursive)
    outcomes = [format_file(p, str(p) if ctx.dir != "." else str(p.relative_to(root)))
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
            if show_diff:
                click.echo(unified_diff(o), nl=False)
        if changed or failed:
            raise KvmnetFailure()
        return
    for o in changed:
        assert o.formatted is not None    # `changed` implies formatted
        write_atomically(o.path, o.formatted)
        click.echo(o.display)
        if show_diff:
            click.echo(unified_diff(o), nl=False)
    if failed:
        raise KvmnetFailure()
