"""desired × state × live → :class:`Plan`.

1. *refresh*: each provider reads all its objects of a type in one bulk call; the
   state's instances are compared with what is live (drift), and objects carrying
   this state's own ownership mark but missing from the state are adopted;
2. *diff*: resources are evaluated in dependency order, each instance's desired
   attributes diffed against its refreshed prior object into no-op / create /
   update / replace, with the attributes that force a replacement; values only
   known after apply stay UNKNOWN for what depends on them;
3. *safety*: prevent_destroy, objects that exist unmanaged (import them), and live
   consumers of anything deleted or replaced (SPEC §5);
4. *targets*: ``--target`` keeps the targeted instances and their dependencies
   (their dependents, for ``--destroy``).
"""
from __future__ import annotations

from kvmnet import gcpause
from kvmnet.gcpause import gc_paused
import re
from collections import defaultdict
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import dataclasses

from kvmnet.engine.config.checks import failed_self
from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.engine.plan.diff import diff_attrs, forces_replace, merge_planned
from kvmnet.engine.plan import refactor
from kvmnet.engine.plan.data import has_data, read_data_sources
from kvmnet.engine.plan.redact import recorded_sensitive, sensitive_keys
from kvmnet.engine.plan.triggers import trigger_of
from kvmnet.engine.plan.model import (
    ADOPTED, CREATE, DELETE, FORGET, NOOP, REPLACE, UPDATE, Plan, ResourceChange,
)
from kvmnet.engine.model import ResourceInstance
from kvmnet.engine.prepare import Prepared, instance_view, resource_value
from kvmnet.engine.reconcile import ADOPT, CONFLICT, ROLLBACK, decide_all, wanted_ids
from kvmnet.engine.resources import TYPES, canonical, identity, state_attrs, with_defaults
from kvmnet.engine.timings import NULL, Timings
from kvmnet.sdk.addresses import parse_address, resource_of, within
from kvmnet.sdk.ownership import mark_address, mark_names
from kvmnet.sdk.provider import ProviderError


@dataclass
class PlanOptions:
    refresh: bool = True
    refresh_only: bool = False
    destroy: bool = False
    targets: list[str] = field(default_factory=list)
    intents: list = field(default_factory=list)       # open intents (kvmnet.state.Intent)
    allow_loss: list[str] = field(default_factory=list)   # addresses whose replace may lose configuration
    replace: list[str] = field(default_factory=list)      # --replace: instances replaced even unchanged


@dataclass
class Refreshed:
    """The result of a refresh: prior attributes per address, and every live object."""

    prior: dict[str, dict | None]                     # address -> live attrs (None: gone)
    ids: dict[str, str | None]                        # address -> live id
    private: dict[str, dict]                          # address -> provider-private data
    live: dict[tuple[str, str], dict] = field(default_factory=dict)  # (provider, type) -> {id: LiveObject}
    drift: list[ResourceChange] = field(default_factory=list)
    adopted: dict[str, object] = field(default_factory=dict)
    conflicts: dict[str, str] = field(default_factory=dict)  # address -> why (open intents)
    remark: set[str] = field(default_factory=set)     # live mark names another address of this state
    imported: dict[str, str] = field(default_factory=dict)   # address -> ID (import blocks)


def _provider_of(prepared: Prepared | None, state_rec) -> str:
    return state_rec.provider


def refresh(prepared: Prepared, snapshot, providers, options: PlanOptions,
            timings: Timings = NULL) -> Refreshed:
    """Read the live objects behind the state (and those the config would create)."""
    prior: dict[str, dict | None] = {a: state_attrs(r) for a, r in snapshot.instances.items()}
    ids = {a: r.id for a, r in snapshot.instances.items()}
    private = {a: dict(r.private or {}) for a, r in snapshot.instances.items()}
    out = Refreshed(prior, ids, private)
    if not options.refresh:
        return out

    wanted: dict[tuple[str, str], set[str]] = defaultdict(set)
    owners: dict[tuple[str, str], dict[str, ResourceInstance]] = defaultdict(dict)
    for r in snapshot.instances.values():
        if r.id:
            wanted[(r.provider, r.type)].add(r.id)
    for inst in prepared.instances.values():
        desired = canonical(inst.type, with_defaults(inst.type, inst.name, inst.attrs))
        ident = identity(inst.type, desired)
        key = (inst.provider, inst.type)
        wanted.setdefault(key, set())
        if isinstance(ident, str):
            wanted[key].add(ident)
            owners[key][ident] = inst
    for key, id_set in wanted_ids(options.intents).items():
        wanted[key] |= id_set

    for (pname, rtype), id_set in sorted(wanted.items()):
        provider = providers.get(pname)
        with timings.phase(f"refresh {pname}"):
            try:
                objs = provider.read(rtype, sorted(id_set))
            except ProviderError as e:
                where = (_instance_where(owners[(pname, rtype)], str(e))
                         or _provider_where(prepared, providers, pname, rtype))
                raise ProviderError(f"{where}{e}") from e
        out.live[(pname, rtype)] = {i: o for i, o in objs.items()}

    for a, r in snapshot.instances.items():
        objs = out.live.get((r.provider, r.type), {})
        obj = objs.get(r.id) if r.id else None
        if obj is None:
            out.prior[a] = None
            out.drift.append(ResourceChange(a, r.type, r.name, r.key, r.provider, DELETE,
                                            r.attrs, None, id=r.id, reason="deleted outside kvmnet"))
            continue
        live_attrs = canonical(r.type, obj.attrs)
        for k in TYPES[r.type].config_only:          # nothing live records these
            if k in r.attrs:
                live_attrs[k] = r.attrs[k]
        out.prior[a] = live_attrs
        if obj.mark is not None and obj.mark.lineage == snapshot.lineage and not mark_names(obj.mark, a):
            out.remark.add(a)        # moved (block or state mv): the mark follows
        if obj.private:
            out.private[a] = {**out.private.get(a, {}), **obj.private}
        # the state row in today's canonical form: a row written by an older release
        # (a nic's v1 ``queues``) is upgraded on read, never reported as drift
        changes = diff_attrs(canonical(r.type, r.attrs), live_attrs, ignore=_ignored(prepared, a))
        if changes:
            out.drift.append(ResourceChange(a, r.type, r.name, r.key, r.provider, UPDATE,
                                            canonical(r.type, r.attrs), live_attrs, id=r.id,
                                            changed_paths=[c.path for c in changes],
                                            reason="changed outside kvmnet"))

    # adoption: an object with this state's own mark that the state does not hold
    if snapshot.lineage:
        by_mark: dict[str, str] | None = None     # a mark's (maybe shortened) address -> address
        for (_pname, rtype), objs in out.live.items():
            for obj in objs.values():
                m = obj.mark
                if not m or m.lineage != snapshot.lineage:
                    continue
                if by_mark is None:
                    by_mark = {mark_address(a): a for a in prepared.instances}
                a = m.address if m.address in prepared.instances else by_mark.get(m.address)
                if a is not None and a not in snapshot.instances:
                    out.prior[a] = canonical(rtype, obj.attrs)
                    out.ids[a] = obj.id
                    out.private[a] = dict(obj.private or {})
                    out.adopted[a] = obj
    _reconcile(prepared, snapshot, options.intents, out)
    return out


def _ignored(prepared: Prepared, address: str) -> tuple[str, ...]:
    """``lifecycle.ignore_changes`` of a configured instance: those attributes are
    not drift either (unlike Terraform, whose refresh reports them)."""
    inst = prepared.instances.get(address)
    return tuple(inst.lifecycle.ignore_changes) if inst is not None else ()


def _reconcile(prepared: Prepared, snapshot, intents: list, out: Refreshed) -> None:
    """Open intents: adopt the exact objects they name, report conflicts."""
    for d in decide_all(intents, out.live, set(snapshot.instances)):
        a = d.intent.address
        if d.verdict == CONFLICT:
            out.conflicts[a] = d.message
        elif d.verdict == ADOPT and a in prepared.instances and a not in out.adopted:
            out.prior[a] = canonical(d.intent.type, d.obj.attrs)
            out.ids[a] = d.obj.id
            out.private[a] = dict(d.obj.private or {})
            out.adopted[a] = d.obj
        elif d.verdict == ROLLBACK and a in out.adopted:
            # ours by its mark but half-made: apply discards it and makes it afresh
            del out.adopted[a]
            for table in (out.prior, out.ids, out.private):
                table.pop(a, None)


def _instance_where(owners: dict[str, ResourceInstance], message: str) -> str | None:
    """``FILE:LINE: ADDRESS: `` of the one instance whose live ID (or a part of a
    comma-separated one, e.g. a sysctl key) the provider's refusal names."""
    named = {inst.address: inst for ident, inst in owners.items()
             if any(re.search(rf"(?<![\w.-]){re.escape(part)}(?![\w-])", message)
                    for part in ident.split(",") if part)}
    if len(named) != 1:
        return None
    (inst,) = named.values()
    return f"{inst.pos.file}:{inst.pos.line}: {inst.address}: "


def _provider_where(prepared: Prepared, providers, pname: str, rtype: str) -> str:
    """``FILE:LINE: provider.NAME: `` of the provider block (or of the first resource
    of ``rtype`` it serves, when it has no block): where a refusal points."""
    where = getattr(providers, "where", {}).get(pname)
    if where and where[0]:
        return f"{where[0]}:{where[1]}: provider.{pname}: "
    for inst in prepared.instances.values():
        if inst.provider == pname and inst.type == rtype:
            return f"{inst.pos.file}:{inst.pos.line}: {inst.address}: "
    return f"provider.{pname}: "


def make_plan(prepared: Prepared, snapshot, providers, options: PlanOptions,
              inputs_json: dict | None = None, timings: Timings = NULL) -> Plan:
    plan = Plan(lineage=snapshot.lineage, serial=snapshot.serial,
                config_digest=prepared.config.digest, variables=inputs_json or {},
                targets=list(options.targets), destroy=options.destroy,
                refresh_only=options.refresh_only)
    diags = Diagnostics()
    for t in options.targets:
        try:
            parse_address(t)
        except ValueError as e:
            diags.add(f"--target: {e}; write TYPE.NAME, TYPE.NAME[KEY] or module.NAME[KEY]...")
    _check_replace_addresses(prepared, options, diags)
    gcpause.freeze()   # the state snapshot lives as long as the run: keep the collector off it
    snapshot, moved = refactor.moved_snapshot(prepared.config, snapshot, diags)
    if options.refresh and has_data(prepared):
        read_data_sources(prepared, providers, diags)
    ref = refresh(prepared, snapshot, providers, options, timings)
    if options.refresh and not options.destroy:
        _read_imports(prepared, snapshot, providers, ref, diags)
    plan.resource_drift = ref.drift
    describe_for_terraform(plan, prepared, snapshot, ref.prior)
    for a, why in sorted(ref.conflicts.items()):
        if a not in prepared.instances:
            diags.add(why, address=a)
    if options.refresh_only:
        return plan

    # the changes live as long as the run and make hardly any cyclic garbage: the
    # collector stays off while they are computed (not while providers are asked
    # for live objects: their libraries may make garbage) and they are then moved
    # out of its generations (≈0.1 s of CPU at 10,000 resources)
    with timings.phase("diff"):
        with gc_paused(freeze=True):
            changes = _diff(prepared, snapshot, providers, options, ref, diags, moved)
            changes = _apply_targets(prepared, changes, options)
            _check_prevent_destroy(prepared, changes, diags)
        if options.refresh:
            recorded = {a: state_attrs(r) for a, r in snapshot.instances.items()}
            _check_consumers(changes, recorded, providers, diags, prepared.instances)
        plan.resource_changes = changes
        plan.outputs = prepared.evaluator.output_values(diags) if not options.destroy else {}
        plan.sensitive_outputs = sorted({n for n, o in prepared.config.outputs.items() if o.sensitive}
                                        | snapshot.sensitive_outputs)
        plan.sensitive_variables = sorted(prepared.evaluator.sensitivity.variables)
    plan.errors = diags.errors
    plan.warnings = diags.warnings
    return plan


def describe_for_terraform(plan: Plan, prepared: Prepared, snapshot, prior: dict) -> None:
    """Fill in what Terraform's JSON plan format adds to the changes: the outputs the
    state holds, the variables, and — worked out only if the plan is written as JSON
    (≈1 s at 10,000 resources) — the prior state (``prior``: the refreshed
    attributes) and the configuration."""
    from kvmnet.engine.outputs import sensitive_outputs, state_document
    from kvmnet.engine.plan.tfconfig import configuration
    plan.prior_outputs = dict(snapshot.outputs)
    plan.sensitive_outputs = sorted(sensitive_outputs(prepared) | snapshot.sensitive_outputs)
    config = prepared.config
    plan.documents = lambda: (
        state_document(snapshot, prior, {c.address: c.sensitive for c in plan.resource_changes}),
        configuration(config, prepared.evaluator.module_calls))
    hidden = prepared.evaluator.sensitivity.variables
    plan.variable_values = {n: v for n, v in prepared.evaluator.variables.items() if n not in hidden}
    from datetime import datetime, timezone
    plan.timestamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_imports(prepared: Prepared, snapshot, providers, ref: Refreshed, diags: Diagnostics) -> None:
    """Import blocks: read each object by its ID and plan it as adopted."""
    managed = {(r.type, r.id): a for a, r in snapshot.instances.items()}
    for address, live_id in refactor.import_ids(prepared.config, prepared.evaluator.scope(),
                                                snapshot, diags).items():
        decl = next(i for i in prepared.config.imports if i.to_addr == address)
        where = dict(file=decl.file, line=decl.line, address=address)
        inst = prepared.instances.get(address)
        if inst is None:
            diags.add(f"import: {address} is not declared in the configuration (write its "
                      "resource block, or plan --generate-config-out FILE)", **where)
            continue
        if (inst.type, live_id) in managed:
            diags.add(f"import: the {inst.type} {live_id!r} is already managed as "
                      f"{managed[(inst.type, live_id)]}", **where)
            continue
        provider = providers.get(inst.provider)
        try:
            obj = provider.import_object(inst.type, live_id)
        except ProviderError as e:
            diags.add(f"import: {e}", **where)
            continue
        if obj is None:
            diags.add(f"import: no {inst.type} with ID {live_id!r} exists", **where)
            continue
        ref.prior[address] = canonical(inst.type, obj.attrs)
        ref.ids[address] = obj.id
        ref.private[address] = dict(obj.private or {})
        ref.imported[address] = live_id
        ref.adopted.pop(address, None)


def _diff(prepared: Prepared, snapshot, providers, options, ref: Refreshed, diags,
          moved: dict[str, str] | None = None) -> list[ResourceChange]:
    config = prepared.config
    ev = prepared.evaluator
    values: dict[str, dict] = {}
    ev.resolve_resource = lambda t, n: resource_value(config, values, t, n)
    ev.reset_locals()
    changes: list[ResourceChange] = []
    seen: set[str] = set()
    graph = prepared.graph

    if not options.destroy:
        data_used = has_data(prepared)      # its values are read now: evaluate everything again
        prepared_by_resource: dict[str, list] = {}
        for inst in prepared.instances.values():
            prepared_by_resource.setdefault(inst.resource_address, []).append(inst)
        for raddr in prepared.order:
            decl = config.resources[raddr]
            deps = sorted(graph.predecessors(raddr))
            # a resource that refers to no other one evaluates exactly as it did in
            # prepare: reuse those instances rather than evaluate it all again
            insts = prepared_by_resource.get(raddr) if not deps and not data_used else None
            for inst in (insts if insts is not None else ev.expand(decl, diags)):
                seen.add(inst.address)
                desired = canonical(inst.type, with_defaults(inst.type, inst.name, inst.attrs))
                prior = ref.prior.get(inst.address)
                rec = snapshot.instances.get(inst.address)
                provider = providers.get(inst.provider) if options.refresh else None
                if provider is not None:
                    for attr, msg in provider.check(inst.type, inst.address, desired):
                        diags.add(msg, file=inst.pos.file, line=inst.line_of(attr),
                                  address=inst.address, attribute=attr)
                if rec is not None and rec.provider != inst.provider and prior is not None:
                    # moving to another provider (iproute → netplan) is a replace
                    rc = ResourceChange(inst.address, inst.type, inst.name, inst.key, inst.provider,
                                        REPLACE, prior, merge_planned(inst.type, desired, prior, True),
                                        replace_paths=["provider"], id=ref.ids.get(inst.address),
                                        dependencies=deps)
                elif prior is None:
                    after = merge_planned(inst.type, desired, None, True)
                    rc = ResourceChange(inst.address, inst.type, inst.name, inst.key, inst.provider,
                                        CREATE, None, after, dependencies=deps)
                    _check_conflict(inst, desired, ref, snapshot, diags)
                else:
                    t = TYPES[inst.type]
                    d = diff_attrs(desired, prior, ignore=inst.lifecycle.ignore_changes,
                                   skip=t.computed)
                    # a config-only attribute changes the state, never the live object
                    d = [x for x in d if x.path.split(".")[0] not in t.config_only]
                    rp = (provider.replace_paths(inst.type, prior, desired) if provider else None)
                    if rp is None:
                        rp = forces_replace(inst.type, d)
                    actions = REPLACE if rp else (UPDATE if d else NOOP)
                    kept: list[str] = []
                    rs = (provider.restart_paths(inst.type, prior, desired)
                          if provider is not None and actions == UPDATE else [])
                    after = merge_planned(inst.type, desired, prior, bool(rp), kept)
                    if inst.lifecycle.ignore_changes:
                        for k in inst.lifecycle.ignore_changes:
                            if k in prior and not rp:
                                after[k] = prior[k]
                    rc = ResourceChange(inst.address, inst.type, inst.name, inst.key, inst.provider,
                                        actions, prior, after, replace_paths=rp, restart_paths=rs,
                                        id=ref.ids.get(inst.address),
                                        changed_paths=[c.path for c in d], dependencies=deps,
                                        kept_paths=kept)
                    if rp and provider is not None:
                        _check_losses(inst, provider.losses(inst.type, prior, desired), options, diags)
                    if inst.address in ref.adopted:
                        rc.reason = ADOPTED
                        rc.private = dict(ref.private.get(inst.address) or {})
                if inst.lifecycle.replace_triggered_by and rc.actions in (UPDATE, NOOP):
                    rc = _triggered_replace(inst, rc, desired, changes)
                if inst.address in options.replace and rc.actions in (UPDATE, NOOP):
                    rc = _requested_replace(inst, rc, desired, provider, options, diags)
                _refactored(rc, inst.address, ref, moved or {})
                rc.sensitive = sensitive_keys(inst)
                _postconditions_now(config, inst, rc, diags)
                # references read what the apply leaves: for a no-op, the object as
                # it is (so an output reads the same as after the apply)
                values.setdefault(raddr, {})[inst.key] = prior if rc.is_noop and prior is not None else rc.after
                changes.append(rc)

    # in state but no longer in config (or --destroy): delete; a removed block: forget
    forget = refactor.forgotten(config, snapshot) if not options.destroy else {}
    for a, r in snapshot.instances.items():
        if a in seen:
            continue
        if a in forget:
            why = forget[a]
            rc = ResourceChange(a, r.type, r.name, r.key, r.provider, FORGET,
                                ref.prior.get(a) or state_attrs(r), None, id=r.id,
                                reason=f"removed block at {why.file}:{why.line}")  # type: ignore[attr-defined]
        else:
            prior = ref.prior.get(a)
            if prior is None:
                continue   # already gone live: the apply just forgets it
            rc = ResourceChange(a, r.type, r.name, r.key, r.provider, DELETE, prior, None,
                                id=ref.ids.get(a), dependencies=list(r.dependencies or []))
        # no configuration says what is sensitive any more: the state remembers
        rc.sensitive = recorded_sensitive(r.private)
        changes.append(rc)
    # --destroy right after a crash: what the refresh adopted by its mark goes too
    if options.destroy:
        for a in ref.adopted:
            inst = prepared.instances[a]
            deps = sorted(graph.predecessors(inst.resource_address))
            changes.append(ResourceChange(a, inst.type, inst.name, inst.key, inst.provider, DELETE,
                                          ref.prior.get(a), None, id=ref.ids.get(a),
                                          dependencies=deps, reason=ADOPTED,
                                          private=dict(ref.private.get(a, {}))))
    return changes


def _postconditions_now(config, inst, rc: ResourceChange, diags: Diagnostics) -> None:
    """Postconditions whose result is known at plan time are checked now, as
    Terraform does (all of them again after apply, engine/walk.py)."""
    if not inst.postconditions or rc.after is None:
        return
    for rule, scope in inst.postconditions:
        d = failed_self(rule, scope, instance_view(config, inst, rc.after))
        if d is not None:
            diags.items.append(dataclasses.replace(d, address=inst.address))


def _refactored(rc: ResourceChange, address: str, ref: Refreshed, moved: dict[str, str]) -> None:
    """A moved instance, or one whose live mark names another address, is updated so
    the provider rewrites the mark; an imported one says so."""
    rc.moved_from = moved.get(address)
    if (rc.moved_from is not None or address in ref.remark) and rc.actions == NOOP:
        rc.actions = UPDATE
        if rc.moved_from is None:
            rc.reason = "ownership mark follows the new address"
    if address in ref.imported:
        rc.import_id = ref.imported[address]
        rc.private = dict(ref.private.get(address) or {})
        rc.reason = None


def _triggered_replace(inst, rc: ResourceChange, desired: dict, changes: list) -> ResourceChange:
    """``rc`` as a replace when a ``replace_triggered_by`` reference fires."""
    fired = trigger_of(inst, {c.address: c for c in changes})
    if fired is None:
        return rc
    assert rc.before is not None
    rc.actions = REPLACE
    rc.after = merge_planned(inst.type, desired, rc.before, True)
    rc.replace_paths = ["lifecycle.replace_triggered_by"]
    rc.reason = f"replace triggered by {fired}"
    rc.restart_paths = []
    return rc


def _check_replace_addresses(prepared: Prepared, options: PlanOptions, diags: Diagnostics) -> None:
    """Each ``--replace`` names one resource instance of the configuration (Terraform's
    ``-replace`` takes an instance address too); anything else is an error, not a
    request silently ignored."""
    from kvmnet.engine.suggest import did_you_mean
    for a in options.replace:
        if a in prepared.instances:
            continue
        try:
            parsed = parse_address(a)
        except ValueError as e:
            diags.add(f"--replace {a}: {e}; write TYPE.NAME or TYPE.NAME[KEY], with module.NAME[KEY]. "
                      "before it inside a module")
            continue
        if parsed.type is None:
            diags.add(f"--replace {a}: a module cannot be replaced; name a resource instance in it")
            continue
        keys = sorted((i.address for i in prepared.instances.values() if i.resource_address == a), key=str)
        if keys:
            diags.add(f"--replace {a}: the resource has several instances; name one, e.g. {keys[0]}")
        else:
            hint = did_you_mean(a, list(prepared.instances))
            diags.add(f"--replace {a}: no such resource instance in the configuration{hint}")


def _requested_replace(inst, rc: ResourceChange, desired: dict, provider, options: PlanOptions,
                       diags: Diagnostics) -> ResourceChange:
    """``rc`` as a replace because ``--replace`` names it (Terraform's "will be
    replaced, as requested"); what the new object cannot keep is checked as for any
    replace."""
    assert rc.before is not None
    rc.actions = REPLACE
    rc.after = merge_planned(inst.type, desired, rc.before, True)
    rc.replace_paths = ["--replace"]
    rc.reason = "replace requested with --replace"
    rc.restart_paths = []
    if provider is not None:
        _check_losses(inst, provider.losses(inst.type, rc.before, desired), options, diags)
    return rc


def _check_conflict(inst, desired, ref: Refreshed, snapshot, diags: Diagnostics) -> None:
    if inst.address in ref.conflicts:
        diags.add(ref.conflicts[inst.address], file=inst.pos.file, line=inst.pos.line,
                  address=inst.address)
        return
    ident = identity(inst.type, desired)
    if not isinstance(ident, str) or not TYPES[inst.type].exclusive:
        return
    obj = ref.live.get((inst.provider, inst.type), {}).get(ident)
    if obj is None or inst.address in ref.adopted:
        return
    # held by another instance of this same state (e.g. renamed in config)?
    for r in snapshot.instances.values():
        if r.id == ident and r.type == inst.type:
            return
    if obj.mark is None:
        diags.add(f'{inst.type} "{ident}" already exists and is not managed by kvmnet; '
                  f"adopt it with: kvmnet import '{inst.address}' '{ident}'",
                  file=inst.pos.file, line=inst.pos.line, address=inst.address)
    elif obj.mark.lineage != snapshot.lineage:
        diags.add(f'{inst.type} "{ident}" already exists and is managed by another kvmnet state '
                  f"(lineage {obj.mark.lineage}, {obj.mark.address})",
                  file=inst.pos.file, line=inst.pos.line, address=inst.address)


def _check_losses(inst, lost: list[str], options: PlanOptions, diags: Diagnostics) -> None:
    """A replace that would lose live configuration is refused unless allowed by address."""
    if not lost:
        return
    what = "; ".join(lost)
    if inst.address in options.allow_loss:
        diags.warn(f"this replace loses live configuration kvmnet cannot keep (allowed by --allow-loss): {what}",
                   file=inst.pos.file, line=inst.pos.line, address=inst.address)
    else:
        diags.add(f"this replace would lose live configuration kvmnet cannot keep: {what}; "
                  f"pass --allow-loss {inst.address} to accept losing it",
                  file=inst.pos.file, line=inst.pos.line, address=inst.address)


def _check_prevent_destroy(prepared: Prepared, changes, diags: Diagnostics) -> None:
    for c in changes:
        inst = prepared.instances.get(c.address)
        if c.deletes and inst is not None and inst.lifecycle.prevent_destroy:
            why = f"replace (forced by {', '.join(c.replace_paths)})" if c.is_replace else "destroy"
            diags.add(f"lifecycle.prevent_destroy is set, but this plan would {why} it",
                      file=inst.pos.file, line=inst.pos.line, address=c.address)


def consumer_problems(changes: list[ResourceChange], providers, done: AbstractSet[str] = frozenset(),
                      recorded: dict[str, dict] | None = None):
    """[(change, [Consumer])] for deletes/replaces of consumable objects still in use,
    and for restarts of ones that running consumers use.

    A consumer is excused when the managed resource behind it (``via``) is deleted by
    this plan too; that resource is then made to go first (a dependency edge).
    Providers are given the attributes recorded in the state (``recorded``), so that a
    port enslaved behind kvmnet's back does not count as one of the bridge's own.
    """
    recorded = recorded or {}
    deleting = {(c.type, c.id): c for c in changes if c.deletes and c.id}
    out = []
    for c in changes:
        if not (c.deletes or c.is_restart) or not TYPES[c.type].consumable or c.address in done:
            continue
        blocking = []
        for _name, p in providers.active():
            for cons in p.consumers(c.type, recorded.get(c.address) or c.before or {}):
                if c.is_restart and cons.running is False:
                    continue        # a restart does not disturb what does not run
                via = deleting.get(cons.via) if cons.via else None
                if via is not None and via.address != c.address:
                    if c.address not in via.dependencies:
                        via.dependencies.append(c.address)
                    continue
                blocking.append(cons)
        if blocking:
            out.append((c, blocking))
    return out


def describe_consumers(address: str, consumers) -> str:
    by_kind: dict[str, list[str]] = defaultdict(list)
    for cons in consumers:
        d = cons.describe()
        if d not in by_kind[cons.kind]:
            by_kind[cons.kind].append(d)
    parts = [f"{kind}(s) {', '.join(names)}" for kind, names in by_kind.items()]
    return f"{address} is in use by " + "; ".join(parts)


def _check_consumers(changes, recorded: dict, providers, diags: Diagnostics,
                     instances: dict | None = None) -> None:
    """Refuse deleting or replacing what something still uses; the refusal points at
    the resource's block when the config still has it."""
    for c, blocking in consumer_problems(changes, providers, recorded=recorded):
        verb = {"replace": "replaced", "restart": "restarted"}.get(c.kind, "destroyed")
        inst = (instances or {}).get(c.address)
        diags.add(describe_consumers(c.address, blocking) + f"; it cannot be {verb} until they stop "
                  "using it (detach them, or manage them in this config so the plan removes them first)",
                  file=inst.pos.file if inst else None, line=inst.pos.line if inst else None,
                  address=c.address)


def _apply_targets(prepared: Prepared, changes: list[ResourceChange], options: PlanOptions):
    if not options.targets:
        return changes
    g = prepared.graph
    by_res = defaultdict(list)
    for c in changes:
        by_res[resource_of(c.address)].append(c)
    keep: set[str] = set()
    for t in options.targets:
        chosen = [c for c in changes if within(c.address, t)]   # a module: everything in it
        keep |= {c.address for c in chosen}
        for res in {resource_of(c.address) for c in chosen}:
            if res in g:
                related = g.descendants(res) if options.destroy else g.ancestors(res)
                for r in related:
                    keep |= {c.address for c in by_res.get(r, [])}
    return [c for c in changes if c.address in keep]
