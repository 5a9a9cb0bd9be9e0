"""The loaded configuration: declarations with their source positions, unevaluated."""
from __future__ import annotations

from dataclasses import dataclass, field

from kvmnet.engine.config.hcl import Attr, Block
from kvmnet.engine.diagnostics import Diagnostics

META_ARGUMENTS = ("count", "for_each", "depends_on", "lifecycle", "provider")


@dataclass
class CheckRule:
    """A ``validation``, ``precondition`` or ``postcondition`` block: a condition
    and the message shown when it is false."""

    kind: str                # "validation", "precondition" or "postcondition"
    condition: Attr
    error_message: Attr
    file: str
    line: int


@dataclass
class VariableDecl:
    name: str
    file: str
    line: int
    default: Attr | None = None
    type: Attr | None = None
    description: str | None = None
    sensitive: bool = False
    nullable: bool = True
    validations: list[CheckRule] = field(default_factory=list)


@dataclass
class LocalDecl:
    name: str
    value: Attr
    file: str


@dataclass
class ProviderDecl:
    name: str                            # provider instance: "libvirt", or "libvirt.kvm02" with an alias
    file: str
    line: int
    attrs: dict[str, Attr] = field(default_factory=dict)   # without "alias"


@dataclass
class ModuleCallDecl:
    """A ``module "NAME" { source = "./DIR" ... }`` block: the inputs are the body's
    other attributes, unevaluated (see :mod:`kvmnet.engine.config.modules`)."""

    name: str
    file: str
    line: int
    source: str
    inputs: dict[str, Attr] = field(default_factory=dict)
    count: Attr | None = None
    for_each: Attr | None = None
    providers: Attr | None = None
    depends_on: Attr | None = None

    @property
    def address(self) -> str:
        return f"module.{self.name}"


@dataclass
class OutputDecl:
    name: str
    file: str
    line: int
    value: Attr | None = None
    sensitive: bool = False


@dataclass
class ResourceDecl:
    """A ``resource "TYPE" "NAME" {}`` block, meta-arguments separated from the body."""

    type: str
    name: str
    file: str
    line: int
    body: Block                          # the block with the meta-arguments removed
    count: Attr | None = None
    for_each: Attr | None = None
    depends_on: Attr | None = None
    provider: Attr | None = None
    prevent_destroy: Attr | None = None
    ignore_changes: Attr | None = None
    module: str = ""                     # module instance path; "" in the root module
    replace_triggered_by: Attr | None = None
    preconditions: list[CheckRule] = field(default_factory=list)
    postconditions: list[CheckRule] = field(default_factory=list)

    @property
    def address(self) -> str:
        if self.module:
            return f"{self.module}.{self.type}.{self.name}"
        return f"{self.type}.{self.name}"


@dataclass
class DataDecl:
    """A ``data "TYPE" "NAME" {}`` block: arguments of a live read at plan time."""

    type: str
    name: str
    file: str
    line: int
    args: dict[str, Attr] = field(default_factory=dict)
    provider: Attr | None = None

    @property
    def address(self) -> str:
        return f"data.{self.type}.{self.name}"


@dataclass
class MovedDecl:
    """``moved { from = ADDR  to = ADDR }``: the state's object at ``from`` is now ``to``."""

    from_addr: str
    to_addr: str
    file: str
    line: int


@dataclass
class RemovedDecl:
    """``removed { from = ADDR  lifecycle { destroy = false } }``: forget, do not destroy."""

    from_addr: str
    file: str
    line: int


@dataclass
class ImportDecl:
    """``import { to = ADDR  id = "ID" }``: adopt the live object ID at ADDR."""

    to_addr: str
    id: object                            # an Attr (may be an expression)
    file: str
    line: int


@dataclass
class Config:
    dir: str
    files: list[str] = field(default_factory=list)
    variables: dict[str, VariableDecl] = field(default_factory=dict)
    locals: dict[str, LocalDecl] = field(default_factory=dict)
    providers: dict[str, ProviderDecl] = field(default_factory=dict)
    resources: dict[str, ResourceDecl] = field(default_factory=dict)   # by "TYPE.NAME"
    outputs: dict[str, OutputDecl] = field(default_factory=dict)
    modules: dict[str, ModuleCallDecl] = field(default_factory=dict)   # module calls, by name
    data: dict[str, DataDecl] = field(default_factory=dict)      # by "data.TYPE.NAME"
    moved: list[MovedDecl] = field(default_factory=list)
    removed: list[RemovedDecl] = field(default_factory=list)
    imports: list[ImportDecl] = field(default_factory=list)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    digest: str = ""                     # hash of every config file's bytes (saved plans)
    required_version: str | None = None  # kvmnet { required_version = "..." }
    settings_at: str = ""                # FILE:LINE of required_version, if set
