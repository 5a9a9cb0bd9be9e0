"""The ``kvmnet`` command line (SPEC §6). Thin: parse flags, call the engine, render,
exit code.

Start-up imports only what the command being run uses: the commands are named in
:data:`COMMANDS` and their modules imported on first use (:class:`LazyGroup`), and
each command imports its engine modules inside its function. So ``kvmnet
validate`` loads the config front end and nothing of the planner, the walk, a
provider or its library; ``kvmnet --help`` loads the command modules (for their
help texts) and no engine module. ``tests/unit/test_startup_imports.py`` holds this.
"""
from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from kvmnet.engine.timings import Timings

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


@dataclass
class Ctx:
    dir: str
    state_path: str
    vars: list[str]
    var_files: list[str]
    no_color: bool
    lock_timeout: float
    timings: Timings | None = None
    sensitive_vars: frozenset = frozenset()     # set once the config is loaded: masked in the command line
    chdir: str = "."                            # -C/-chdir DIR as typed, for the commands kvmnet suggests
    _console: object = None
    _err: object = None

    @property
    def color(self) -> bool:
        return not self.no_color and not os.environ.get("NO_COLOR") and sys.stdout.isatty()

    @property
    def console(self):
        if self._console is None:
            from rich.console import Console
            self._console = Console(no_color=not self.color, highlight=False, soft_wrap=True,
                                    force_terminal=self.color or None, emoji=False)
        return self._console

    def out(self, markup: str = "", **kw) -> None:
        if not self.color and set(kw) <= {"end"}:
            # no colour: the markup's plain text is what rich would print (soft_wrap,
            # no highlighting), without its per-line rendering (a 10,000-resource plan
            # prints in ≈0.9 s instead of ≈2.4 s)
            from rich.text import Text
            sys.stdout.write(Text.from_markup(markup, emoji=False).plain + kw.get("end", "\n"))
            return
        self.console.print(markup, **kw)

    def out_plan(self, plan) -> None:
        """A plan in Terraform's shape: plain text straight from the renderer when
        colour is off (no markup to parse: a 10,000-resource plan prints ≈1 s faster)."""
        from kvmnet.engine.render.human import render_plan
        if self.color:
            self.console.print(render_plan(plan), end="")
        else:
            sys.stdout.write(render_plan(plan, color=False))

    def err(self, text: str) -> None:
        click.echo(text, err=True)

    @property
    def inputs(self):
        from kvmnet.engine.config.evaluate import VariableInputs
        return VariableInputs(var_files=list(self.var_files), vars=list(self.vars))

    def command_line(self) -> str:
        """The command as typed, for the history and the lock; the value of each
        ``--var`` of a sensitive variable masked."""
        from kvmnet.commands.masking import mask_vars
        return "kvmnet " + " ".join(mask_vars(sys.argv[1:], self.sensitive_vars))


class KvmnetFailure(Exception):
    """An error already described; exits 1."""


def error_line(text: str) -> str:
    """One error as printed: ``Error: `` first, then the message (a located one
    keeps ``FILE:LINE: ADDRESS: …`` right after the prefix)."""
    return text if text.startswith("Error: ") else f"Error: {text}"


def fail(ctx: Ctx, lines) -> NoReturn:
    for line in ([lines] if isinstance(lines, str) else lines):
        ctx.err(error_line(line))
    raise KvmnetFailure()


def print_diagnostics(ctx: Ctx, diags) -> None:
    """Warnings as ``Warning: FILE:LINE: …``, then errors as ``Error: FILE:LINE: …``."""
    for d in diags.warnings if hasattr(diags, "warnings") else []:
        ctx.err(f"Warning: {d}")
    errors = diags.errors if hasattr(diags, "errors") else list(diags)
    for d in errors:
        ctx.err(error_line(str(d)))


class Duration(click.ParamType):
    """Seconds as a number, or Terraform's duration words: ``500ms``, ``10s``, ``2m``, ``1h``."""

    name = "duration"
    _SCALE = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        import re
        m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ms|s|m|h)?\s*", str(value))
        if m is None:
            self.fail(f"{value!r} is not a duration of zero or more seconds "
                      "(e.g. 30, 30s, 500ms, 2m)", param, ctx)
        return float(m.group(1)) * self._SCALE[m.group(2) or ""]


class LazyGroup(click.Group):
    """A click group whose commands are imported when first asked for: ``lazy`` maps
    each command name to ``"module:attribute"`` (a click command or group). Listing
    the names (``--help``'s list, did-you-mean) imports nothing; looking one up
    imports its module."""

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, _, attr = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as e:     # suggest among every name, loaded or not
            raise click.exceptions.NoSuchCommand(
                e.command_name, possibilities=self.list_commands(ctx), ctx=ctx) from None


# kvmnet's commands: name -> "module:attribute" (a group names its own subcommands likewise)
COMMANDS = {
    "validate": "kvmnet.commands.validate_cmd:validate",
    "plan": "kvmnet.commands.core:plan",
    "apply": "kvmnet.commands.core:apply",
    "destroy": "kvmnet.commands.core:destroy",
    "show": "kvmnet.commands.core:show",
    "graph": "kvmnet.commands.core:graph",
    "import": "kvmnet.commands.core:import_",
    "force-unlock": "kvmnet.commands.core:force_unlock",
    "state": "kvmnet.commands.state_cmds:state",
    "fmt": "kvmnet.commands.fmt_cmd:fmt",
    "confirm": "kvmnet.commands.confirm_cmd:confirm",
    "doctor": "kvmnet.commands.doctor_cmd:doctor",
    "output": "kvmnet.commands.output_cmd:output",
    "console": "kvmnet.commands.console_cmd:console",
    "sandbox": "kvmnet.commands.sandbox_cmd:sandbox",
    "agent": "kvmnet.commands.agent_group:agent",
    "fleet": "kvmnet.commands.fleet_group:fleet",
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "--chdir", "directory", default=".", metavar="DIR",
              help="Change into DIR first, as Terraform's -chdir: the config, the state and every "
                   "relative path given are read there (default: .)")
@click.option("--state", "state_path", envvar="KVMNET_STATE", default=None, metavar="PATH",
              help="State file (default: DIR/kvmnet.state.db; env KVMNET_STATE)")
@click.option("--var", "vars_", multiple=True, metavar="NAME=VALUE", help="Set a variable")
@click.option("--var-file", "var_files", multiple=True, metavar="FILE", help="Variable values file")
@click.option("--no-color", is_flag=True, help="No colour in output")
@click.option("--lock-timeout", default=0.0, type=Duration(), metavar="DURATION",
              help="How long to wait for the state lock: seconds, or 500ms / 10s / 2m (default 0)")
@click.version_option(package_name="kvmnet")
@click.pass_context
def cli(cctx, directory, state_path, vars_, var_files, no_color, lock_timeout):
    """kvmnet: plan and apply KVM host networking from HCL."""
    if directory != ".":
        enter_directory(cctx, directory)
    cctx.obj = Ctx(dir=".", state_path=state_path or "kvmnet.state.db",
                   vars=list(vars_), var_files=list(var_files), no_color=no_color,
                   lock_timeout=lock_timeout, chdir=directory)


def enter_directory(cctx: click.Context, directory: str) -> None:
    """Change into ``directory`` for the rest of the run, as Terraform's ``-chdir``
    does: the config, the state and every relative path of the command line are then
    read there. The start directory is restored when the command ends (a caller
    running kvmnet in its own process keeps its directory)."""
    start = os.getcwd()
    try:
        os.chdir(directory)
    except OSError as e:
        raise click.ClickException(
            f"cannot change into the directory {directory!r} (-chdir/-C): {e.strerror}") from None
    cctx.call_on_close(lambda: os.chdir(start))


def main(argv=None) -> int:
    """The ``kvmnet`` command. Without ``argv`` this process is the command (the
    console script, ``python -m kvmnet``): it ends with it, so what a run builds may
    be frozen out of the garbage collector's generations (kvmnet.gcpause)."""
    from kvmnet.argv import normalize, option_table
    if argv is None:
        from kvmnet import gcpause
        gcpause.allow_freezing()
    given = list(sys.argv[1:] if argv is None else argv)
    argv = normalize(given, option_table(cli, given))
    try:
        cli.main(args=argv, prog_name="kvmnet", standalone_mode=False)
        return EXIT_OK
    except SystemExit as e:
        return int(e.code or 0) if isinstance(e.code, int) else 1
    except KvmnetFailure:
        return EXIT_ERROR
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_ERROR
    except click.UsageError as e:
        words = ["kvmnet", *(e.ctx.command_path.split()[1:] if e.ctx else []), "--help"]
        hint = f" (see '{' '.join(words)}')"
        click.echo(f"Error: {e.format_message()}{hint}", err=True)
        return EXIT_ERROR
    except click.ClickException as e:
        e.show()
        return EXIT_ERROR if e.exit_code != 0 else 0
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception as e:
        if not report_known_error(e):
            raise
        return EXIT_ERROR


def report_known_error(e: Exception) -> bool:
    """Print a state error (its message says why the state cannot be used) or a
    config diagnostic as ``Error:`` lines; False for any other exception. (The two
    classes are imported here, on the way out of a failed run, not at start-up.)"""
    from kvmnet.engine.diagnostics import DiagnosticError
    from kvmnet.state.backend import StateError
    if isinstance(e, StateError):
        click.echo(f"Error: {e}", err=True)
        return True
    if isinstance(e, DiagnosticError):
        print_diagnostics(Ctx(".", "", [], [], True, 0), e.diagnostics)
        return True
    return False
