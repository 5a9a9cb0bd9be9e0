"""The inverse of an apply: the plan that undoes the changes it completed.

A rollback (``apply --rollback-on-failure``, or an apply not confirmed in time) is
an ordinary plan run by the one walk (:mod:`kvmnet.engine.walk`), so it gets the
same ordering, consumer checks before deletes, per-step state writes and verify as
any apply. This module only decides; it touches nothing.

=============  =====================================================================
apply did      inverse change
=============  =====================================================================
create         delete (the record and provider-private data the apply wrote, so a
               sysctl profile restores its original values)
update         update back to the attributes recorded before the apply
delete         create again from the attributes recorded before the apply
replace        replace: the new object goes, the old one is created again
=============  =====================================================================

Dependencies come from the records (the current one for what is deleted, the
earlier one for what is restored), so the walk deletes consumers first and
re-creates what they use first. The failed step itself is not in ``done``: what its
provider left half done is its provider's to clean.
"""
from __future__ import annotations

from kvmnet.engine.plan.model import CREATE, DELETE, REPLACE, UPDATE, Plan, ResourceChange

# the walk action of an inverse change -> the apply action it undoes
UNDOES = {"delete": "create", "create": "delete", "update": "update"}


class CannotInvert(Exception):
    """A completed change the state holds too little about to undo."""


def inverse_plan(done: list[tuple[str, str]], before: dict, now: dict, *,
                 lineage: str | None, serial: int) -> Plan:
    """The plan undoing ``done`` ((address, action) the walk completed).

    ``before`` and ``now`` map addresses to the state's InstanceRecord (or None)
    before the apply and now. Raises :class:`CannotInvert` naming the change."""
    actions: dict[str, set[str]] = {}
    for address, action in done:
        actions.setdefault(address, set()).add(action)
    changes = [_inverse_change(a, acts, now.get(a), before.get(a)) for a, acts in actions.items()]
    return Plan(lineage=lineage, serial=serial, config_digest="", resource_changes=changes)


def _inverse_change(address: str, did: set[str], current, earlier) -> ResourceChange:
    if did == {"create"}:
        if current is None:
            raise CannotInvert(f"{address}: the object this apply created is not in the state")
        return _change(current, DELETE, current.attrs, None)
    if earlier is None:
        raise CannotInvert(f"{address}: the state kept no record of it from before this apply")
    if did == {"delete"}:
        return _change(earlier, CREATE, None, earlier.attrs)
    if current is None:
        raise CannotInvert(f"{address}: it is no longer in the state")
    if did == {"update"}:
        return _change(earlier, UPDATE, current.attrs, earlier.attrs, id_=current.id)
    if did == {"delete", "create"}:
        return _change(earlier, REPLACE, current.attrs, earlier.attrs, id_=current.id,
                       deps=current.dependencies)
    raise CannotInvert(f"{address}: cannot undo {' and '.join(sorted(did))}")


def _change(rec, actions: list[str], before: dict | None, after: dict | None, *,
            id_: str | None = None, deps: list[str] | None = None) -> ResourceChange:
    """A change for the instance ``rec`` names (type, provider, dependencies)."""
    dependencies = sorted(set(rec.dependencies or []) | set(deps or []))
    return ResourceChange(address=rec.address, type=rec.type, name=rec.name, key=rec.key,
                          provider=rec.provider, actions=list(actions),
                          before=dict(before) if before is not None else None,
                          after=dict(after) if after is not None else None,
                          id=id_ if id_ is not None else (rec.id if before is not None else None),
                          dependencies=dependencies)
