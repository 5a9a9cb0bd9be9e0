"""Plan → text shaped like Terraform's (``+`` create, ``~`` update in place, ``-/+``
replace with the attribute that forces it, ``-`` destroy, drift section, summary).

By default produces rich markup, which the CLI prints with colour on a terminal;
``render_plan(plan, color=False)`` gives the same text plain, ready to print as it is
(what rich would print from the markup without colour, without parsing markup: a
10,000-resource plan renders in a fraction of the time).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from kvmnet.engine.plan.model import Plan, ResourceChange
from kvmnet.engine.plan.redact import shown
from kvmnet.sdk.values import UNKNOWN


@dataclass(frozen=True)
class Style:
    """How the renderer marks text: ``tag(style, text)`` and ``esc(literal text)``."""
    tag: Callable[[str, str], str]
    esc: Callable[[str], str]


def _esc(s: str) -> str:
    """rich's escape (only text holding "[" or ending in a backslash can change)."""
    if "[" not in s and not s.endswith("\\"):
        return s
    from rich.markup import escape
    return escape(s)


MARKUP = Style(tag=lambda style, text: f"[{style}]{text}[/]", esc=_esc)
PLAIN = Style(tag=lambda style, text: text, esc=lambda text: text)

SYMBOL = {
    "create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red"),
    "replace": ("-/+", "red"), "restart": ("~/", "magenta"), "read": ("~", "yellow"),
}


def fmt_value(v) -> str:
    """A value as the plan shows it; the common types are tested first (a plan of
    10,000 resources formats ≈200,000 values; the kinds never overlap but for bool
    within int, tested before it)."""
    if isinstance(v, str):
        if v.isascii() and v.isprintable() and '"' not in v and "\\" not in v:
            return f'"{v}"'   # what json.dumps gives, without its machinery
        return json.dumps(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {fmt_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(fmt_value(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if v is UNKNOWN:
        return "(known after apply)"
    if v is None:
        return "null"
    return str(v)


def _kind(c: ResourceChange) -> str:
    return c.kind


def _header(c: ResourceChange, drift: bool = False) -> str:
    if drift:
        if c.actions == ["delete"]:
            return f"  # {c.address} has been deleted"
        return f"  # {c.address} has changed"
    k = _kind(c)
    if c.only_moved:
        return f"  # {c.moved_from} has moved to {c.address}"
    if k == "forget":
        return f"  # {c.address} will no longer be managed by kvmnet ({c.reason}); the live object stays"
    if c.import_id is not None and k in ("no-op", "update"):
        return f"  # {c.address} will be imported (id {c.import_id})" + (
            "\n  # and updated in-place" if k == "update" else "")
    why = {
        "create": "will be created", "update": "will be updated in-place",
        "delete": "will be destroyed", "replace": "must be replaced",
        "restart": "will be updated and restarted",
    }[k]
    line = f"  # {c.address} {why}"
    if c.reason and k != "delete":
        line += f" ({c.reason})"
    if k == "delete" and c.reason:
        line += f" ({c.reason})"
    if c.moved_from is not None:
        line += f"\n  # (moved from {c.moved_from})"
    if c.import_id is not None:
        line += f"\n  # (imported from id {c.import_id})"
    return line


def _attr_lines(c: ResourceChange, k: str, pad: str, st: Style) -> list[str]:
    before = c.before or {}
    after = c.after or {}
    keys = list(dict.fromkeys(list(after.keys()) + list(before.keys())))
    width = max((len(x) for x in keys), default=0)
    forced = set(c.replace_paths) | set(c.restart_paths)
    tag, esc = st.tag, st.esc
    plus, minus, tilde = tag("green", "+"), tag("red", "-"), tag("yellow", "~")
    forces = "  " + (tag("magenta", "# forces restart") if k == "restart"
                     else tag("red", "# forces replacement"))
    lines = []
    for key in keys:
        b, a = before.get(key), after.get(key)
        if key in c.sensitive:
            b, a = shown(b, key, c.sensitive), shown(a, key, c.sensitive)
        if k == "create":
            if a is None:
                continue
            lines.append(f"{pad}{plus} {esc(f'{key:<{width}} = {fmt_value(a)}')}")
        elif k == "delete":
            if b is None:
                continue
            lines.append(f"{pad}{minus} {esc(f'{key:<{width}} = {fmt_value(b)}')}")
        else:
            changed = [p for p in c.changed_paths if p == key or p.startswith(key + ".")]
            unknown_now = a is UNKNOWN and b is not None
            if not changed and not unknown_now and not (k == "replace" and key in forced):
                continue
            if isinstance(a, dict) and isinstance(b, dict) and changed:
                lines.append(f"{pad}{tilde} " + esc(key + " {"))
                for p in changed:
                    sub = p[len(key) + 1:] if p != key else key
                    sb = b[sub] if sub in b else _get(b, sub)
                    sa = a[sub] if sub in a else _get(a, sub)
                    note = forces if p in forced else ""
                    # a map key is the user's text: escaped with its value (a key
                    # ending in "\\" escaped alone would print doubled)
                    lines.append(f"{pad}    {tilde} {esc(f'{sub} = {fmt_value(sb)}')} -> "
                                 f"{esc(fmt_value(sa))}{note}")
                lines.append(f"{pad}  }}")
                continue
            note = forces if (key in forced or any(
                p.startswith((key + ".", key + "[")) for p in forced)) else ""
            lines.append(f"{pad}{tilde} {esc(f'{key:<{width}} = {fmt_value(b)}')} -> "
                         f"{esc(fmt_value(a))}{note}")
    if c.kept_paths:
        # not configured, so not managed: carried over as it is live, not dropped
        lines.append(f"{pad}  " + tag("dim", "# kept as found: ") + esc(", ".join(c.kept_paths)))
    kept_xml = after.get("kept") if k in ("replace", "update") else None
    if isinstance(kept_xml, list) and kept_xml:
        lines.append(f"{pad}  " + tag("dim", "# kept as found (verbatim, not managed): ")
                     + esc(", ".join(_first_tag(x) for x in kept_xml)))
    return lines


def _first_tag(xml: str) -> str:
    """``<metadata>`` for a kept XML part (its opening tag's name only)."""
    name = xml.lstrip()[1:].split(">", 1)[0].split()[0].rstrip("/")
    return f"<{name}>"


def _get(d, path: str):
    for part in path.split("."):
        if not isinstance(d, dict):
            return None
        d = d.get(part)
    return d


def render_change(c: ResourceChange, drift: bool = False, st: Style = MARKUP) -> list[str]:
    k = "update" if drift and c.actions != ["delete"] else _kind(c)
    if not drift and (k == "forget" or c.only_moved or (k == "no-op" and c.import_id is not None)):
        return [st.esc(line) for line in _header(c).split("\n")]   # nothing live changes
    sym, color = SYMBOL[k]
    key = f"[{c.key}]" if isinstance(c.key, int) else (f'["{c.key}"]' if c.key is not None else "")
    esc = st.esc
    lines = [esc(_header(c, drift))]
    lines.append(f"{st.tag(color, f'{sym:>3}')} resource \"{c.type}\" \"{esc(c.name)}\"{esc(key)} {{")
    lines += _attr_lines(c, k, "      ", st)
    lines.append("    }")
    return lines


def render_plan(plan: Plan, color: bool = True) -> str:
    """The plan as rich markup (``color``), or as the plain text it prints as."""
    st = MARKUP if color else PLAIN
    tag, esc = st.tag, st.esc
    out: list[str] = []
    if plan.resource_drift:
        out.append(tag("bold", "Objects have changed outside of kvmnet"))
        out.append("")
        out.append("kvmnet detected the following changes made outside of kvmnet since the last apply:")
        out.append("")
        for c in plan.resource_drift:
            out += render_change(c, drift=True, st=st)
            out.append("")
        if not plan.refresh_only:
            out.append("Unless you have made equivalent changes to your configuration, the "
                       "actions below will undo or respond to these changes.")
            out.append("")
            out.append("─" * 77)
            out.append("")
    adopted = plan.adopted
    if adopted:
        out.append(tag("bold", "Objects to adopt"))
        out.append("")
        out.append("These carry this state's ownership mark but the state does not record them "
                   "(an interrupted apply leaves such objects); apply records them:")
        for c in adopted:
            out.append(f"  {esc(c.address)} (id {esc(str(c.id))})")
        out.append("")
    if plan.refresh_only:
        if not plan.resource_drift:
            out.append(f"{tag('green', 'No changes.')} Your infrastructure still matches the state.")
        else:
            out.append(f"Drift: {len(plan.resource_drift)} object(s) changed outside of kvmnet.")
        return "\n".join(out) + "\n"
    changes = [c for c in plan.resource_changes if not c.is_noop or c.import_id is not None]
    if not changes:
        outputs = _output_changes(plan, st)
        if not outputs:
            out.append(f"{tag('green', 'No changes.')} Your infrastructure matches the configuration.")
            return "\n".join(out) + "\n"
        out += outputs[1:]
        out.append("")
        out.append("You can apply this plan to save these new output values to the state, "
                   "without changing any real infrastructure.")
        return "\n".join(out) + "\n"
    out.append("kvmnet will perform the following actions:")
    out.append("")
    for c in changes:
        out += render_change(c, st=st)
        out.append("")
    add, change, destroy = plan.counts()
    more = plan.more_counts()
    out.append(f"{tag('bold', 'Plan:')} " + (f"{more['import']} to import, " if more["import"] else "")
               + f"{add} to add, {change} to change, {destroy} to destroy"
               + (f", {more['forget']} to forget" if more["forget"] else "") + ".")
    out += _output_changes(plan, st)
    return "\n".join(out) + "\n"


def _output_changes(plan: Plan, st: Style) -> list[str]:
    """Terraform's "Changes to Outputs:": only the outputs whose value changes."""
    after = {} if plan.destroy else plan.outputs
    changed = plan.output_changes
    if not changed:
        return []
    hidden = set(plan.sensitive_outputs)

    def show(name: str, values: dict) -> str:
        return st.esc(fmt_value(shown(values[name], name, hidden)))

    out = ["", "Changes to Outputs:"]
    for name, action in changed:
        sym, color = SYMBOL[action]
        head = f"  {st.tag(color, sym)} {st.esc(name)} = "
        if action == "create":
            out.append(head + show(name, after))
        elif action == "delete":
            out.append(head + show(name, plan.prior_outputs) + " -> null")
        else:
            out.append(head + show(name, plan.prior_outputs) + " -> " + show(name, after))
    return out
