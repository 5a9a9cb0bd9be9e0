"""Plan → text shaped like Terraform's (``+`` create, ``~`` update in place, ``-/+``
replace with the attribute that forces it, ``-`` destroy, drift section, summary).

Produces rich markup; the CLI prints it with colour on a terminal and without
(``--no-color``, ``NO_COLOR``, not a tty).
"""
from __future__ import annotations

import json

from kvmnet.engine.plan.model import Plan, ResourceChange
from kvmnet.engine.values import UNKNOWN

SYMBOL = {
    "create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red"),
    "replace": ("-/+", "red"), "read": ("~", "yellow"),
}


def _esc(s: str) -> str:
    from rich.markup import escape
    return escape(s)


def fmt_value(v) -> str:
    if v is UNKNOWN:
        return "(known after apply)"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(fmt_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {fmt_value(x)}" for k, x in v.items()) + " }"
    return str(v)


def _kind(c: ResourceChange) -> str:
    if c.is_replace:
        return "replace"
    return c.actions[0]


def _header(c: ResourceChange, drift: bool = False) -> str:
    if drift:
        if c.actions == ["delete"]:
            return f"  # {c.address} has been deleted"
        return f"  # {c.address} has changed"
    k = _kind(c)
    why = {
        "create": "will be created", "update": "will be updated in-place",
        "delete": "will be destroyed", "replace": "must be replaced",
    }[k]
    line = f"  # {c.address} {why}"
    if c.reason and k != "delete":
        line += f" ({c.reason})"
    if k == "delete" and c.reason:
        line += f" ({c.reason})"
    return line


def _attr_lines(c: ResourceChange, k: str, pad: str) -> list[str]:
    before = c.before or {}
    after = c.after or {}
    keys = list(dict.fromkeys(list(after.keys()) + list(before.keys())))
    width = max((len(x) for x in keys), default=0)
    forced = set(c.replace_paths)
    lines = []
    for key in keys:
        b, a = before.get(key), after.get(key)
        if k == "create":
            if a is None:
                continue
            lines.append(f"{pad}[green]+[/] {key:<{width}} = {_esc(fmt_value(a))}")
        elif k == "delete":
            if b is None:
                continue
            lines.append(f"{pad}[red]-[/] {key:<{width}} = {_esc(fmt_value(b))}")
        else:
            changed = [p for p in c.changed_paths if p == key or p.startswith(key + ".")]
            unknown_now = a is UNKNOWN and b is not None
            if not changed and not unknown_now and not (k == "replace" and key in forced):
                continue
            if isinstance(a, dict) and isinstance(b, dict) and changed:
                lines.append(f"{pad}[yellow]~[/] {key} {{")
                for p in changed:
                    sub = p[len(key) + 1:] if p != key else key
                    sb = b[sub] if sub in b else _get(b, sub)
                    sa = a[sub] if sub in a else _get(a, sub)
                    note = "  [red]# forces replacement[/]" if p in forced else ""
                    lines.append(f"{pad}    [yellow]~[/] {sub} = {_esc(fmt_value(sb))} -> "
                                 f"{_esc(fmt_value(sa))}{note}")
                lines.append(f"{pad}  }}")
                continue
            note = "  [red]# forces replacement[/]" if (key in forced or any(
                p.startswith(key + ".") for p in forced)) else ""
            lines.append(f"{pad}[yellow]~[/] {key:<{width}} = {_esc(fmt_value(b))} -> "
                         f"{_esc(fmt_value(a))}{note}")
    return lines


def _get(d, path: str):
    for part in path.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(part)
    return d


def render_change(c: ResourceChange, drift: bool = False) -> list[str]:
    k = "update" if drift and c.actions != ["delete"] else _kind(c)
    sym, color = SYMBOL[k]
    key = f"[{c.key}]" if isinstance(c.key, int) else (f'["{c.key}"]' if c.key is not None else "")
    lines = [_esc(_header(c, drift))]
    lines.append(f"[{color}]{sym:>3}[/] resource \"{c.type}\" \"{_esc(c.name)}\"{_esc(key)} {{")
    lines += _attr_lines(c, k, "      ")
    lines.append("    }")
    return lines


def render_plan(plan: Plan) -> str:
    out: list[str] = []
    if plan.resource_drift:
        out.append("[bold]Objects have changed outside of kvmnet[/]")
        out.append("")
        out.append("kvmnet detected the following changes made outside of kvmnet since the last apply:")
        out.append("")
        for c in plan.resource_drift:
            out += render_change(c, drift=True)
            out.append("")
        if not plan.refresh_only:
            out.append("Unless you have made equivalent changes to your configuration, the "
                       "actions below will undo or respond to these changes.")
            out.append("")
            out.append("─" * 77)
            out.append("")
    if plan.refresh_only:
        if not plan.resource_drift:
            out.append("[green]No changes.[/] Your infrastructure still matches the state.")
        else:
            out.append(f"Drift: {len(plan.resource_drift)} object(s) changed outside of kvmnet.")
        return "\n".join(out) + "\n"
    changes = plan.changes
    if not changes:
        out.append("[green]No changes.[/] Your infrastructure matches the configuration.")
        return "\n".join(out) + "\n"
    out.append("kvmnet will perform the following actions:")
    out.append("")
    for c in changes:
        out += render_change(c)
        out.append("")
    add, change, destroy = plan.counts()
    out.append(f"[bold]Plan:[/] {add} to add, {change} to change, {destroy} to destroy.")
    if plan.outputs:
        out.append("")
        out.append("Changes to Outputs:")
        for k, v in plan.outputs.items():
            out.append(f"  + {k} = {_esc(fmt_value(v))}")
    return "\n".join(out) + "\n"
