"""The plan as data: what would change, saved, shown and re-checked before apply."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from kvmnet.engine.diagnostics import Diagnostic
from kvmnet.sdk.addresses import module_of
from kvmnet.engine.plan import tfjson
from kvmnet.sdk.values import UNKNOWN

FORMAT_VERSION = tfjson.FORMAT_VERSION
READABLE_FORMATS = ("1.0", FORMAT_VERSION)   # saved plans kvmnet reads ("1.0": before Terraform's keys)

ADOPTED = "adopted: carries this state's ownership mark"   # a ResourceChange's reason

NOOP, CREATE, UPDATE, DELETE = ["no-op"], ["create"], ["update"], ["delete"]
REPLACE = ["delete", "create"]
FORGET = ["forget"]          # a removed block: drop from the state, leave the object


@dataclass
class ResourceChange:
    address: str
    type: str
    name: str
    key: Any
    provider: str
    actions: list[str]
    before: dict | None
    after: dict | None                 # may hold UNKNOWN (known after apply)
    replace_paths: list[str] = field(default_factory=list)
    id: str | None = None              # live identity (import ID) before the change
    changed_paths: list[str] = field(default_factory=list)
    reason: str | None = None          # e.g. "adopted", "deleted outside kvmnet"
    dependencies: list[str] = field(default_factory=list)
    # provider-private data of an adopted object (the state holds none for it yet)
    private: dict = field(default_factory=dict)
    # what a replace keeps as found on the live object, not being configured
    kept_paths: list[str] = field(default_factory=list)
    # an in-place update that restarts the object: the attributes that force it
    restart_paths: list[str] = field(default_factory=list)
    moved_from: str | None = None      # a moved block (or state mv): the state's old address
    import_id: str | None = None       # an import block: the live ID adopted at this address
    sensitive: list[str] = field(default_factory=list)   # top-level keys masked when shown

    @property
    def is_noop(self) -> bool:
        return self.actions == NOOP

    @property
    def is_replace(self) -> bool:
        return self.actions == REPLACE

    @property
    def is_restart(self) -> bool:
        return self.actions == UPDATE and bool(self.restart_paths)

    @property
    def kind(self) -> str:
        """create, update, restart, replace or delete (what the plan shows)."""
        if self.is_replace:
            return "replace"
        return "restart" if self.is_restart else self.actions[0]

    @property
    def deletes(self) -> bool:
        return "delete" in self.actions

    @property
    def only_moved(self) -> bool:
        """A move whose only live change is the ownership mark."""
        return self.moved_from is not None and self.actions == UPDATE and not self.changed_paths


@dataclass
class Plan:
    lineage: str | None
    serial: int
    config_digest: str
    variables: dict = field(default_factory=dict)        # VariableInputs.to_json()
    targets: list[str] = field(default_factory=list)
    destroy: bool = False
    refresh_only: bool = False
    resource_changes: list[ResourceChange] = field(default_factory=list)
    resource_drift: list[ResourceChange] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    format_version: str = FORMAT_VERSION
    # Terraform's JSON plan format (kvmnet.engine.plan.tfjson): the outputs as the
    # state holds them, the state's and the config's documents, the variables' values
    prior_outputs: dict = field(default_factory=dict)
    prior_state: dict | None = None
    configuration: dict | None = None
    variable_values: dict = field(default_factory=dict)
    sensitive_outputs: list[str] = field(default_factory=list)
    timestamp: str = ""                                   # when it was made (RFC 3339, UTC)
    # makes (prior_state, configuration) when the plan is first written as JSON
    documents: Callable[[], tuple[dict, dict]] | None = field(default=None, repr=False, compare=False)
    sensitive_variables: list[str] = field(default_factory=list)   # not saved: their names only redact

    @property
    def changes(self) -> list[ResourceChange]:
        return [c for c in self.resource_changes if not c.is_noop]

    def counts(self) -> tuple[int, int, int]:
        add = sum(1 for c in self.changes if "create" in c.actions)
        change = sum(1 for c in self.changes if c.actions == UPDATE and not c.only_moved)
        destroy = sum(1 for c in self.changes if "delete" in c.actions)
        return add, change, destroy

    def more_counts(self) -> dict[str, int]:
        """Beyond add/change/destroy, as OpenTofu's summary: imports and forgets."""
        return {"import": len(self.imports),
                "forget": sum(1 for c in self.changes if c.actions == FORGET)}

    @property
    def adopted(self) -> list[ResourceChange]:
        """Instances the refresh adopted (this state's mark, no state record yet)."""
        return [c for c in self.resource_changes if c.reason == ADOPTED]

    @property
    def output_changes(self) -> list[tuple[str, str]]:
        """(name, action) of each output whose value the apply changes."""
        return tfjson.changed_outputs(self.prior_outputs, {} if self.destroy else self.outputs)

    @property
    def imports(self) -> list[ResourceChange]:
        """Instances an import block adopts (they may change as well)."""
        return [c for c in self.resource_changes if c.import_id is not None]

    @property
    def has_changes(self) -> bool:
        """Anything to apply (as Terraform counts: a changed output value too)."""
        if self.refresh_only:
            return bool(self.resource_drift)
        return bool(self.changes) or bool(self.imports) or bool(self.output_changes)

    # -- JSON (SPEC §6 shape; also the saved plan file) -------------------------
    def to_json(self) -> dict:
        if self.documents is not None:
            self.prior_state, self.configuration = self.documents()
            self.documents = None
        def rc(c: ResourceChange) -> dict:
            d = {
                "address": c.address, "mode": tfjson.MANAGED, "type": c.type, "name": c.name,
                "provider_name": c.provider,
                "change": {
                    "actions": c.actions,
                    "before": encode(c.before),
                    "after": encode(c.after),
                    "after_unknown": tfjson.unknown_mirror(c.after),
                    "replace_paths": [p.split(".") for p in c.replace_paths],
                    "restart_paths": [p.split(".") for p in c.restart_paths],
                    "before_sensitive": {k: True for k in c.sensitive} if c.before is not None else False,
                    "after_sensitive": {k: True for k in c.sensitive} if c.after is not None else False,
                },
                "actions": c.actions, "before": encode(c.before), "after": encode(c.after),
                "replace_paths": [p.split(".") for p in c.replace_paths],
            }
            if c.key is not None:
                d["index"] = c.key
            module = module_of(c.address)
            if module:              # Terraform's field: the module instance it is in
                d["module_address"] = module
            if c.id is not None:
                d["id"] = c.id
            if c.is_restart:
                d["action"] = "restart"
            if c.reason:
                d["action_reason"] = c.reason
            if c.changed_paths:
                d["changed_paths"] = c.changed_paths
            if c.kept_paths:
                d["kept_paths"] = c.kept_paths
            if c.private:
                d["private"] = encode(c.private)
            if c.dependencies:      # the state records them: a saved plan must carry them
                d["dependencies"] = list(c.dependencies)
            if c.moved_from is not None:
                d["previous_address"] = c.moved_from
            if c.import_id is not None:
                d["change"]["importing"] = {"id": c.import_id}
            return d

        sensitive = frozenset(self.sensitive_outputs)
        return {
            "format_version": self.format_version,
            "kvmnet_version": tfjson.kvmnet_version(),
            "variables": {n: {"value": encode(v)} for n, v in self.variable_values.items()},
            "planned_values": self._planned_values(sensitive),
            "resource_drift": [rc(c) for c in self.resource_drift],
            "resource_changes": [rc(c) for c in self.resource_changes],
            "output_changes": encode(tfjson.output_changes(
                self.prior_outputs, {} if self.destroy else self.outputs, sensitive)),
            "prior_state": self.prior_state,
            "configuration": self.configuration,
            "timestamp": self.timestamp,
            "errored": bool(self.errors),
            # kvmnet's own: what apply re-checks and needs (stale plans, saved inputs)
            "lineage": self.lineage,
            "serial": self.serial,
            "config_digest": self.config_digest,
            "inputs": self.variables,
            "targets": self.targets,
            "destroy": self.destroy,
            "refresh_only": self.refresh_only,
            "outputs": encode(self.outputs),
            "prior_outputs": encode({k: v for k, v in self.prior_outputs.items() if k not in sensitive}),
            "sensitive_outputs": sorted(sensitive),
            "errors": [e.to_json() for e in self.errors],
            "warnings": [w.to_json() for w in self.warnings],
        }

    def _planned_values(self, sensitive: frozenset[str]) -> dict:
        """Terraform's ``planned_values``: every instance as it will be after apply."""
        resources = [tfjson.state_resource(c.address, c.type, c.name, c.key, c.provider,
                                           c.after or {}, sensitive=c.sensitive)
                     for c in self.resource_changes if c.after is not None]
        outputs = {} if self.destroy else self.outputs
        return tfjson.state_values(resources, encode(outputs), sensitive)

    def dumps(self) -> str:
        """The plan document as Terraform prints it, compact JSON on one line (at 10,000
        resources a quarter of the time and less than half the size of indented JSON),
        with no sensitive value in clear (engine/plan/redact.py): the saved plan file
        and what plan --json prints."""
        from kvmnet.engine.plan.redact import redact
        d = redact(self.to_json(), self.sensitive_outputs, self.sensitive_variables)
        return json.dumps(d, separators=(",", ":")) + "\n"

    @classmethod
    def from_json(cls, d: dict) -> "Plan":
        def rc(x: dict) -> ResourceChange:
            ch = x.get("change", x)
            return ResourceChange(
                address=x["address"], type=x["type"], name=x["name"], key=x.get("index"),
                provider=x.get("provider_name", ""), actions=list(ch["actions"]),
                before=decode(ch.get("before")), after=decode(ch.get("after")),
                replace_paths=[".".join(map(str, p)) for p in ch.get("replace_paths", [])],
                restart_paths=[".".join(map(str, p)) for p in ch.get("restart_paths", [])],
                id=x.get("id"), changed_paths=x.get("changed_paths", []),
                kept_paths=list(x.get("kept_paths") or []),
                reason=x.get("action_reason"), private=decode(x.get("private") or {}),
                dependencies=[str(a) for a in x.get("dependencies") or []],
                moved_from=x.get("previous_address"),
                sensitive=sorted(ch.get("after_sensitive") or ch.get("before_sensitive") or {}),
                import_id=(ch.get("importing") or {}).get("id"))

        if d.get("format_version") not in READABLE_FORMATS:
            raise ValueError(f"unsupported plan format {d.get('format_version')!r}")
        inputs = d.get("inputs")
        if inputs is None:      # a plan saved before the Terraform format held them here
            inputs = d.get("variables", {})
        return cls(
            lineage=d.get("lineage"), serial=d.get("serial", 0), config_digest=d.get("config_digest", ""),
            variables=inputs, targets=d.get("targets", []), destroy=d.get("destroy", False),
            refresh_only=d.get("refresh_only", False),
            resource_changes=[rc(x) for x in d.get("resource_changes", [])],
            resource_drift=[rc(x) for x in d.get("resource_drift", [])],
            outputs=decode(d.get("outputs", {})),
            prior_outputs=decode(d.get("prior_outputs") or {}),
            prior_state=d.get("prior_state"), configuration=d.get("configuration"),
            variable_values={n: decode(v.get("value")) for n, v in (d.get("variables") or {}).items()
                             if inputs is not d.get("variables") and isinstance(v, dict)},
            sensitive_outputs=list(d.get("sensitive_outputs") or []),
            timestamp=str(d.get("timestamp") or ""),
            errors=[Diagnostic(e["summary"], file=e.get("file"), line=e.get("line"),
                               address=e.get("address"), attribute=e.get("attribute"))
                    for e in d.get("errors", [])],
        )


def stale_reason(plan: Plan, lineage: str | None, serial: int, config_digest: str) -> str | None:
    """Why a saved plan no longer applies to this state and configuration, or None."""
    if plan.lineage != lineage:
        return f"it was made for state lineage {plan.lineage}, but the state's lineage is {lineage}"
    if plan.serial != serial:
        return f"the state has changed since the plan was made (serial {plan.serial} → {serial})"
    if plan.config_digest != config_digest:
        return "the configuration files have changed since the plan was made"
    return None


_UNKNOWN_JSON = {"__kvmnet_unknown__": True}


def encode(v):
    """JSON-ready copy of a value; UNKNOWN becomes a marker object."""
    if v is UNKNOWN:
        return dict(_UNKNOWN_JSON)
    if isinstance(v, dict):
        return {str(k): encode(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [encode(x) for x in v]
    return v


def decode(v):
    if isinstance(v, dict):
        if v == _UNKNOWN_JSON:
            return UNKNOWN
        return {k: decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode(x) for x in v]
    return v
