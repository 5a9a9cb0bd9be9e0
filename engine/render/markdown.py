"""Plan → Markdown for a pull-request comment: summary, a table of changes, details
per resource, and the drift section."""
from __future__ import annotations

from kvmnet.engine.plan.model import Plan, ResourceChange
from kvmnet.engine.plan.redact import shown
from kvmnet.engine.render.human import fmt_value

ICON = {"create": "➕ create", "update": "🔧 update in place", "delete": "🗑️ destroy",
        "replace": "♻️ replace", "restart": "🔁 update and restart", "forget": "📤 forget",
        "moved": "🚚 moved", "import": "📥 import", "no-op": "no change"}


def _kind(c: ResourceChange) -> str:
    if c.only_moved:
        return "moved"
    if c.import_id is not None and c.is_noop:
        return "import"
    return c.kind


def _note(c: ResourceChange) -> str:
    if c.moved_from is not None:
        return f" (moved from `{c.moved_from}`)"
    if c.import_id is not None:
        return f" (imported from id `{c.import_id}`)"
    return ""


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _details(c: ResourceChange, drift: bool = False) -> list[str]:
    before, after = c.before or {}, c.after or {}
    rows = []
    keys = list(dict.fromkeys(list(after) + list(before)))
    for k in keys:
        b, a = shown(before.get(k), k, c.sensitive), shown(after.get(k), k, c.sensitive)
        changed = [p for p in c.changed_paths if p == k or p.startswith(k + ".")]
        if c.actions == ["update"] or c.is_replace or drift:
            if not changed and not (c.is_replace and k in c.replace_paths):
                continue
        elif (a if c.actions == ["create"] else b) is None:
            continue
        def under(paths: list[str], k: str = k) -> bool:     # ``ip.address``, ``ip[0].address``
            return any(p == k or p.startswith((k + ".", k + "[")) for p in paths)
        note = " **forces replacement**" if under(c.replace_paths) else ""
        if under(c.restart_paths):
            note = " **forces restart**"
        rows.append(f"| `{k}` | `{_cell(fmt_value(b))}` | `{_cell(fmt_value(a))}` |{note} |")
    if not rows:
        return []
    return ["| attribute | before | after | |", "|---|---|---|---|", *rows]


def render_markdown(plan: Plan) -> str:
    add, change, destroy = plan.counts()
    out = ["## kvmnet plan", ""]
    if plan.refresh_only:
        out.append(f"**Drift:** {len(plan.resource_drift)} object(s) changed outside kvmnet.")
    elif plan.changes or plan.imports:
        more = plan.more_counts()
        out.append("**Plan:** " + (f"{more['import']} to import, " if more["import"] else "")
                   + f"{add} to add, {change} to change, {destroy} to destroy"
                   + (f", {more['forget']} to forget" if more["forget"] else "") + ".")
    else:
        out.append("**No changes.** The infrastructure matches the configuration.")
    out.append("")
    if plan.errors:
        out += ["### Errors", ""] + [f"- `{_cell(str(e))}`" for e in plan.errors] + [""]
    shown = [c for c in plan.resource_changes if not c.is_noop or c.import_id is not None]
    if shown and not plan.refresh_only:
        out += ["| action | resource | forced by |", "|---|---|---|"]
        for c in shown:
            forced = ", ".join(f"`{p}`" for p in c.replace_paths + c.restart_paths)
            out.append(f"| {ICON[_kind(c)]} | `{c.address}`{_note(c)} | {forced} |")
        out.append("")
        out += ["<details><summary>Details</summary>", ""]
        for c in shown:
            out += [f"#### `{c.address}` — {ICON[_kind(c)]}", ""] + _details(c) + [""]
        out += ["</details>", ""]
    if plan.resource_drift:
        out += ["### Changed outside kvmnet", ""]
        for c in plan.resource_drift:
            what = "deleted" if c.actions == ["delete"] else "changed"
            out += [f"#### `{c.address}` — {what}", ""] + _details(c, drift=True) + [""]
    return "\n".join(out).rstrip() + "\n"
