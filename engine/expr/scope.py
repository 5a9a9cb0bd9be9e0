"""What an expression can see when it is evaluated."""
from __future__ import annotations

from typing import Any, Callable, Container, Mapping

from kvmnet.engine import limits


class Scope:
    """The names an expression is evaluated against; the engine fills it in.

    - ``variables``: ``var.NAME`` values (any mapping; a missing key is an
      undeclared variable).
    - ``locals``: ``local.NAME`` values (any mapping, may be lazy: raise KeyError
      for an undeclared local).
    - ``count``: ``{"index": n}`` inside a resource with ``count``, else None.
    - ``each``: ``{"key": k, "value": v}`` inside a resource with ``for_each``.
    - ``resolve_resource(type, name)``: the value of ``TYPE.NAME``: a dict of
      attributes for a single instance, a list of them for ``count``, a dict of
      them keyed by ``for_each`` key. Raises ``LookupError`` (KeyError) for an
      undeclared resource. None: resource references are not allowed here.
    - ``resource_types``: the known resource type names (any container), used to
      tell ``foo.x`` (unknown name) from ``network.nope`` (undeclared resource).
      None: every other root name is handed to ``resolve_resource``.
    - ``files``: a :class:`~kvmnet.engine.expr.functions.FileAccess` for the
      module the expression is in (``file``, ``templatefile``...; it records what
      they read for the config digest). None: file functions are errors.
    - ``marks``: a list that ``sensitive(...)`` (and reading a sensitive
      variable) appends to; the caller treats the result as sensitive when it
      is non-empty afterwards. None: marks are not tracked.
    - ``console``: True only in ``kvmnet console``, where ``type(...)`` works.
    - ``loop``: names bound by enclosing ``for`` expressions (internal).
    - ``budget``: how many more ``for`` iterations one evaluation may run, shared
      by every scope derived from this one (internal; limits.MAX_COLLECTION_ITEMS).

    Scopes are cheap: :meth:`with_count` / :meth:`with_each` copy the references.
    """

    __slots__ = ("variables", "locals", "count", "each", "resolve_resource",
                 "resource_types", "loop", "budget", "files", "marks", "console")

    def __init__(
        self,
        variables: Mapping[str, Any] | None = None,
        locals: Mapping[str, Any] | None = None,
        count: Mapping[str, Any] | None = None,
        each: Mapping[str, Any] | None = None,
        resolve_resource: Callable[[str, str], Any] | None = None,
        resource_types: Container[str] | None = None,
        loop: dict | None = None,
        files: Any = None,
        marks: list | None = None,
        console: bool = False,
    ):
        self.variables = {} if variables is None else variables
        self.locals = {} if locals is None else locals
        self.count = count
        self.each = each
        self.resolve_resource = resolve_resource
        self.resource_types = resource_types
        self.loop = loop
        self.budget = [limits.MAX_COLLECTION_ITEMS]
        self.files = files
        self.marks = marks
        self.console = console

    def _copy(self) -> "Scope":
        s = Scope.__new__(Scope)
        s.variables = self.variables
        s.locals = self.locals
        s.count = self.count
        s.each = self.each
        s.resolve_resource = self.resolve_resource
        s.resource_types = self.resource_types
        s.loop = self.loop
        s.budget = self.budget
        s.files = self.files
        s.marks = self.marks
        s.console = self.console
        return s

    def replace(self, **changes) -> "Scope":
        """A copy with some fields changed, e.g. ``scope.replace(locals=...)``."""
        s = self._copy()
        for name, value in changes.items():
            setattr(s, name, value)
        return s

    def with_count(self, index: int) -> "Scope":
        """This scope inside instance ``index`` of a ``count`` resource."""
        s = self._copy()
        s.count = {"index": index}
        return s

    def with_each(self, key, value) -> "Scope":
        """This scope inside instance ``key`` of a ``for_each`` resource."""
        s = self._copy()
        s.each = {"key": key, "value": value}
        return s

    def child_loop(self) -> "Scope":
        """A scope for one ``for`` expression; the caller fills ``loop``."""
        s = self._copy()
        s.loop = dict(self.loop) if self.loop else {}
        return s
