"""``render_plan(plan, color=False)`` builds plain text directly: it must be exactly
what rich prints from the markup version without colour."""
from __future__ import annotations

import pytest
from rich.text import Text

from kvmnet.engine.plan.model import CREATE, DELETE, NOOP, REPLACE, UPDATE, Plan, ResourceChange
from kvmnet.engine.render.human import render_plan
from kvmnet.sdk.values import UNKNOWN

# strings rich markup could take for tags or escapes
TRICKY_STRINGS = [
    "[bold]", "[/]", "[red]x[/red]", "a[b]c", "[", "]", "x\\", "\\[bold]", "\\\\[x]",
    "ends with backslash\\", ":smile: :thumbs_up:", "tab\tand\nnewline", "网络 é ✓",
    'quote " inside', "[link=http://x]y[/link]", "[@click]z[/]",
]


def _rc(name, actions, before, after, key=None, type_="kvm_network", **kw) -> ResourceChange:
    k = "" if key is None else (f"[{key}]" if isinstance(key, int) else f'["{key}"]')
    return ResourceChange(address=f"{type_}.{name}{k}", type=type_, name=name, key=key,
                          provider="kvm", actions=actions, before=before, after=after, **kw)


def _markup_as_printed(plan: Plan) -> str:
    return Text.from_markup(render_plan(plan), emoji=False).plain


def _plan(changes=(), drift=(), refresh_only=False, outputs=None) -> Plan:
    return Plan(lineage="l", serial=1, config_digest="d", refresh_only=refresh_only,
                resource_changes=list(changes), resource_drift=list(drift),
                outputs=dict(outputs or {}))


def _every_kind() -> list[ResourceChange]:
    base = {"name": "br0", "mtu": 1500, "stp": False, "addresses": ["10.0.0.1/24"],
            "dns": {"enabled": True, "forwarders": ["1.1.1.1"]}, "comment": None}
    return [
        _rc("created", CREATE, None, {**base, "uuid": UNKNOWN, "mac": UNKNOWN}),
        _rc("updated", UPDATE, base, {**base, "mtu": 9000, "stp": True},
            changed_paths=["mtu", "stp"], id="br0"),
        _rc("nested", UPDATE, base,
            {**base, "dns": {"enabled": False, "forwarders": ["8.8.8.8", "[bold]"]}},
            changed_paths=["dns.enabled", "dns.forwarders"]),
        _rc("unknown_now", UPDATE, {**base, "uuid": "u-1"}, {**base, "uuid": UNKNOWN}),
        _rc("replaced", REPLACE, base, {**base, "name": "br1", "uuid": UNKNOWN},
            changed_paths=["name"], replace_paths=["name"], id="br0"),
        _rc("replaced_nested", REPLACE, base,
            {**base, "dns": {"enabled": True, "forwarders": ["9.9.9.9"]}},
            changed_paths=["dns.forwarders"], replace_paths=["dns.forwarders"]),
        _rc("replaced_forced_unchanged", REPLACE, base, base, replace_paths=["name"],
            reason="requested with -replace"),
        _rc("deleted", DELETE, base, None, id="br0"),
        _rc("deleted_why", DELETE, base, None, reason="no longer in the configuration"),
        _rc("adopted", UPDATE, base, {**base, "mtu": 1400}, changed_paths=["mtu"],
            reason="adopted: carries this state's ownership mark"),
        _rc("unchanged", NOOP, base, base),
        _rc("counted", CREATE, None, {"name": "c0"}, key=0),
        _rc("keyed", CREATE, None, {"name": "k"}, key="a-b"),
        _rc("floats", UPDATE, {"ratio": 0.5, "n": -1}, {"ratio": 1e-7, "n": 10 ** 20},
            changed_paths=["ratio", "n"]),
        _rc("empties", CREATE, None, {"l": [], "m": {}, "s": "", "z": 0, "f": False}),
    ]


def _tricky_changes() -> list[ResourceChange]:
    out = []
    for i, s in enumerate(TRICKY_STRINGS):
        out += [
            _rc(f"c{i}", CREATE, None, {"name": s, "list": [s, 1], "map": {"k": s}}),
            _rc(f"u{i}", UPDATE, {"name": "old", "map": {"k": "x"}}, {"name": s, "map": {"k": s}},
                changed_paths=["name", "map.k"]),
            _rc(f"r{i}", REPLACE, {"name": s}, {"name": s + "2"}, changed_paths=["name"],
                replace_paths=["name"], reason=f"because {s}"),
            _rc(f"d{i}", DELETE, {"name": s}, None, reason=s),
            _rc(f"k{i}", CREATE, None, {"name": "x"}, key=s),
        ]
    return out


def _drift() -> list[ResourceChange]:
    return [
        _rc("gone", DELETE, {"name": "gone[bold]"}, None, reason="deleted outside kvmnet"),
        _rc("changed", UPDATE, {"name": "x", "mtu": 1500}, {"name": "x", "mtu": 1400},
            changed_paths=["mtu"]),
        _rc("changed_str", UPDATE, {"name": "x\\"}, {"name": "[/]"}, changed_paths=["name"]),
    ]


PLANS = {
    "empty": _plan(),
    "only_noop": _plan([_rc("same", NOOP, {"a": 1}, {"a": 1})]),
    "every_kind": _plan(_every_kind()),
    "tricky_strings": _plan(_tricky_changes()),
    "outputs": _plan(_every_kind()[:1], outputs={
        "plain": "x", "bracket": "[bold]x[/bold]", "backslash": "a\\", "n": 3,
        "unknown": UNKNOWN, "list": ["[", "\\"], "map": {"k": "[red]"}, "null": None}),
    "drift_and_changes": _plan(_every_kind(), drift=_drift()),
    "drift_no_changes": _plan(drift=_drift()),
    "refresh_only_drift": _plan(drift=_drift(), refresh_only=True),
    "refresh_only_clean": _plan(refresh_only=True),
    "everything": _plan(_every_kind() + _tricky_changes(), drift=_drift(),
                        outputs={"o": "[x]", "p": UNKNOWN}),
}


@pytest.mark.parametrize("name", PLANS)
def test_plain_equals_markup_as_printed(name):
    plan = PLANS[name]
    plain = render_plan(plan, color=False)
    assert plain == _markup_as_printed(plan)
    assert plain.encode() == _markup_as_printed(plan).encode()


def test_plain_keeps_square_brackets_and_backslashes():
    plain = render_plan(PLANS["tricky_strings"], color=False)
    assert '"[bold]"' in plain and '"[red]x[/red]"' in plain
    assert '"ends with backslash\\\\"' in plain    # json.dumps doubles it
    assert "because [bold]" in plain


def test_markup_has_colour_tags_plain_has_none():
    plan = PLANS["every_kind"]
    assert "[green]" in render_plan(plan)
    plain = render_plan(plan, color=False)
    assert "[green]" not in plain and "[/]" not in plain
    assert "# forces replacement" in plain
    assert "(known after apply)" in plain


@pytest.mark.parametrize("s", TRICKY_STRINGS)
def test_one_string_everywhere(s):
    """Each tricky string alone in every position a user's value can reach."""
    changes = [
        _rc("a", CREATE, None, {"v": s}),
        _rc("b", UPDATE, {"v": "x"}, {"v": s}, changed_paths=["v"]),
        _rc("c", UPDATE, {"m": {"k": s}}, {"m": {"k": "y"}}, changed_paths=["m.k"]),
        _rc("d", REPLACE, {"v": s}, {"v": "z"}, changed_paths=["v"], replace_paths=["v"], reason=s),
        _rc("e", DELETE, {"v": s}, None, reason=s),
        _rc("f", CREATE, None, {"v": 1}, key=s),
    ]
    for plan in (_plan(changes, outputs={"o": s}), _plan(drift=changes[:5]),
                 _plan(drift=changes[:5], refresh_only=True)):
        assert render_plan(plan, color=False) == _markup_as_printed(plan)


@pytest.mark.parametrize("s", TRICKY_STRINGS + ["a\\", "x[/]", "[bold]"])
def test_map_keys_and_attribute_names(s):
    """A map's keys are the user's text (sysctl settings, …): the changed key's line
    and every attribute line print the key as it is, in colour as without."""
    changes = [
        _rc("m", UPDATE, {"settings": {s: "1", "b": 2}}, {"settings": {s: "2", "b": 2}},
            changed_paths=[f"settings.{s}"], type_="sysctl_profile"),
        _rc("r", REPLACE, {"settings": {s: "1"}}, {"settings": {s: "2"}},
            changed_paths=[f"settings.{s}"], replace_paths=[f"settings.{s}"]),
        _rc("a", CREATE, None, {s: 1, "b": 2}),
        _rc("u", UPDATE, {s: 1}, {s: 2}, changed_paths=[s]),
        _rc("d", DELETE, {s: 1}, None),
        _rc("n", UPDATE, {s: {"k": 1}}, {s: {"k": 2}}, changed_paths=[f"{s}.k"]),
    ]
    for plan in (_plan(changes), _plan(drift=changes)):
        plain = render_plan(plan, color=False)
        assert plain == _markup_as_printed(plan)
        if "\n" not in s and "\t" not in s:
            assert s in plain
