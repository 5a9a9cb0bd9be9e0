"""The expression tree: each node evaluates itself against a :class:`Scope`.

Nodes are immutable once built, so one parsed tree is shared by every place the
same text occurs and evaluated many times (once per ``count`` index, say).
Unknown values propagate: any operation that touches ``UNKNOWN`` yields it.
"""
from __future__ import annotations

from typing import Any

from kvmnet.engine import blockref, limits
from kvmnet.sdk.values import UNKNOWN, contains_unknown

from . import number, ops
from .errors import ExprError
from .reference import Reference

# traversal step kinds
ATTR, INDEX, INDEX_EXPR, SPLAT = 0, 1, 2, 3
LEGACY = "legacy"     # the argument of a SPLAT step written ``.*``


class Expr:
    """Base class of all expression nodes."""

    __slots__ = ("offset",)
    offset: int

    def evaluate(self, scope):  # pragma: no cover - abstract
        raise NotImplementedError

    def references(self) -> list[Reference]:
        """Every reference in the expression, in source order, without duplicates
        and without names bound by enclosing ``for`` expressions."""
        out: list[Reference] = []
        self.collect_refs(frozenset(), out)
        seen = set()
        unique = []
        for r in out:
            key = (r.parts, r.indexes)
            if key not in seen:
                seen.add(key)
                unique.append(r)
        return unique

    def collect_refs(self, bound: frozenset, out: list) -> None:
        pass

    @property
    def is_constant(self) -> bool:
        return False


class Literal(Expr):
    __slots__ = ("value",)

    def __init__(self, value, offset: int = 0):
        self.value = value
        self.offset = offset

    def evaluate(self, scope):
        return self.value

    @property
    def is_constant(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"Literal({self.value!r})"


def checked_string(s: str, offset: int) -> str:
    """``s``, unless it is longer than limits.MAX_STRING_CHARS (an ExprError)."""
    if len(s) > limits.MAX_STRING_CHARS:
        raise ExprError(f"string longer than {limits.MAX_STRING_CHARS} characters", offset)
    return s


def spend(scope, offset: int) -> None:
    """Count one ``for`` iteration against the evaluation's budget."""
    budget = scope.budget
    budget[0] -= 1
    if budget[0] < 0:
        raise ExprError(f"for expressions would run more than {limits.MAX_COLLECTION_ITEMS} "
                        "iterations in one evaluation", offset)


class Template(Expr):
    """``"a-${x}-b"``: literal text and interpolations joined into a string."""

    __slots__ = ("parts",)

    def __init__(self, parts, offset: int = 0):
        self.parts = tuple(parts)   # str or Expr
        self.offset = offset

    def evaluate(self, scope):
        out = []
        for p in self.parts:
            if type(p) is str:
                out.append(p)
                continue
            v = p.evaluate(scope)
            if type(v) is str:
                out.append(v)
            elif v is UNKNOWN:
                return UNKNOWN
            elif v is None:
                raise ExprError("cannot include a null value in a string template", p.offset)
            elif isinstance(v, (list, dict)):
                raise ExprError(f"cannot include a {ops.type_name(v)} in a string template: "
                                "a string is required"
                                + blockref.hint(v, p.text if isinstance(p, Traversal) else None), p.offset)
            else:
                out.append(ops.to_string(v))
        return checked_string("".join(out), self.offset)

    def collect_refs(self, bound, out):
        for p in self.parts:
            if type(p) is not str:
                p.collect_refs(bound, out)


class _Choice(Expr):
    """A condition and the two expressions it chooses between: what a template's
    ``%{ if }`` and a conditional expression hold alike (they evaluate differently)."""

    __slots__ = ("cond", "then", "otherwise")

    def __init__(self, cond, then, otherwise, offset=0):
        self.cond, self.then, self.otherwise, self.offset = cond, then, otherwise, offset

    def collect_refs(self, bound, out):
        self.cond.collect_refs(bound, out)
        self.then.collect_refs(bound, out)
        self.otherwise.collect_refs(bound, out)


class TemplateIf(_Choice):
    """``%{ if c }a%{ else }b%{ endif }`` inside a template."""

    __slots__ = ()

    def evaluate(self, scope):
        c = self.cond.evaluate(scope)
        if c is UNKNOWN:
            return UNKNOWN
        branch = self.then if ops.to_bool(c, "template condition: ") else self.otherwise
        return branch.evaluate(scope)


class TemplateFor(Expr):
    """``%{ for k, v in coll }...%{ endfor }`` inside a template."""

    __slots__ = ("key_var", "value_var", "collection", "body")

    def __init__(self, key_var, value_var, collection, body, offset=0):
        self.key_var, self.value_var = key_var, value_var
        self.collection, self.body, self.offset = collection, body, offset

    def evaluate(self, scope):
        coll = self.collection.evaluate(scope)
        if coll is UNKNOWN:
            return UNKNOWN
        child = scope.child_loop()
        loop = child.loop
        out = []
        size = 0
        for k, v in iterate_collection(coll, self.collection.offset):
            spend(child, self.offset)
            if self.key_var is not None:
                loop[self.key_var] = k
            loop[self.value_var] = v
            s = self.body.evaluate(child)
            if s is UNKNOWN:
                return UNKNOWN
            size += len(s)
            if size > limits.MAX_STRING_CHARS:
                raise ExprError(f"string longer than {limits.MAX_STRING_CHARS} characters",
                                self.offset)
            out.append(s)
        return "".join(out)

    def collect_refs(self, bound, out):
        self.collection.collect_refs(bound, out)
        inner = bound | {self.value_var} | ({self.key_var} if self.key_var else set())
        self.body.collect_refs(frozenset(inner), out)


class TupleCons(Expr):
    """``[a, b, c]``"""

    __slots__ = ("items",)

    def __init__(self, items, offset=0):
        self.items = tuple(items)
        self.offset = offset

    def evaluate(self, scope):
        return [e.evaluate(scope) for e in self.items]

    def collect_refs(self, bound, out):
        for e in self.items:
            e.collect_refs(bound, out)


class ObjectCons(Expr):
    """``{a = 1, "b" = x, (k) = v}``"""

    __slots__ = ("items",)

    def __init__(self, items, offset=0):
        self.items = tuple(items)   # (key Expr, value Expr)
        self.offset = offset

    def evaluate(self, scope):
        out = {}
        for k, v in self.items:
            key = k.evaluate(scope)
            if type(key) is not str:
                if key is UNKNOWN:
                    return UNKNOWN
                if key is None:
                    raise ExprError("object key must not be null", k.offset)
                key = ops.to_string(key, "object key: ")
            out[key] = v.evaluate(scope)
        return out

    def collect_refs(self, bound, out):
        for k, v in self.items:
            k.collect_refs(bound, out)
            v.collect_refs(bound, out)


class Traversal(Expr):
    """``var.x``, ``network.lab[0].name``, ``each.value``, ``f(x)[0]``, ``a[*].b``.

    ``root`` is the root name for a scope traversal, or None when ``source`` is an
    arbitrary expression being indexed. ``texts[i]`` is the source text up to and
    including step i (for error messages).
    """

    __slots__ = ("root", "source", "steps", "texts", "root_text", "first", "_ref")

    def __init__(self, root, source, steps, texts, root_text, offset=0):
        self.root = root
        self.source = source
        self.steps = tuple(steps)
        self.texts = tuple(texts)
        self.root_text = root_text
        self.offset = offset
        self.first = self._first_name()
        self._ref = None

    @property
    def text(self) -> str:
        return self.texts[-1] if self.texts else self.root_text

    def _first_name(self):
        if self.steps:
            kind, arg = self.steps[0]
            if kind == ATTR or (kind == INDEX and type(arg) is str):
                return arg
        return None

    def evaluate(self, scope):
        if self.source is not None:
            v = self.source.evaluate(scope)
            return self.walk(v, 0, scope)
        root = self.root
        loop = scope.loop
        if loop and root in loop:
            return self.walk(loop[root], 0, scope)
        if root == "var" or root == "local":
            name = self.first
            what = "input variable" if root == "var" else "local value"
            if name is None:
                raise ExprError(f'"{root}" must be followed by a name, as in {root}.NAME', self.offset)
            table = scope.variables if root == "var" else scope.locals
            try:
                v = table[name]
            except KeyError:
                raise ExprError(f'reference to undeclared {what} "{name}"{_dash_hint(name)}',
                                self.offset) from None
            return self.walk(v, 1, scope)
        if root == "count":
            if scope.count is None:
                raise ExprError('"count.index" can only be used in a resource that sets "count"',
                                self.offset)
            name = self.first
            if name != "index":
                raise ExprError(f'"{self.text}": the "count" object has only the attribute '
                                f'"index"{_dash_hint(name or "")}', self.offset)
            return self.walk(scope.count["index"], 1, scope)
        if root == "each":
            if scope.each is None:
                raise ExprError(f'"{self.text}": "each.key" and "each.value" can only be used '
                                'in a resource that sets "for_each"', self.offset)
            name = self.first
            if name not in ("key", "value"):
                raise ExprError(f'"{self.text}": the "each" object has only the attributes '
                                '"key" and "value"', self.offset)
            return self.walk(scope.each[name], 1, scope)
        return self._resource(scope)

    def _resource(self, scope):
        root = self.root
        resolve = scope.resolve_resource
        types = scope.resource_types
        if resolve is None or (types is not None and root not in types):
            if not self.steps:
                raise ExprError(f'unknown name "{root}"', self.offset)
            if resolve is None:
                raise ExprError(f'unknown reference "{self.text}": only var., local., count. '
                                'and each. can be used here', self.offset)
            raise ExprError(f'unknown reference "{self.text}": "{root}" is not a resource type '
                            '(a reference starts with var., local., count., each. or a '
                            'resource type)', self.offset)
        name = self.first
        if name is None:
            raise ExprError(f'a reference to resource type "{root}" must be followed by '
                            f'the resource name, as in {root}.NAME', self.offset)
        try:
            v = resolve(root, name)
        except LookupError:
            raise ExprError(f'reference to undeclared resource "{root}.{name}"', self.offset) from None
        return self.walk(v, 1, scope)

    def walk(self, v, start: int, scope, stop: int | None = None):
        steps = self.steps
        for i in range(start, len(steps) if stop is None else stop):
            if v is UNKNOWN:
                return UNKNOWN
            kind, arg = steps[i]
            if kind == ATTR:
                v = self._attr(v, arg, i)
            elif kind == INDEX:
                v = self._index(v, arg, i)
            elif kind == INDEX_EXPR:
                key = arg.evaluate(scope)
                if key is UNKNOWN:
                    return UNKNOWN
                v = self._index(v, key, i)
            else:
                # SPLAT: ``[*]`` applies every remaining step to each element; the
                # legacy ``.*`` only the attribute steps right after it, and the rest
                # to the result (``l.*.a[0]`` is ``[for x in l : x.a][0]``)
                end = len(steps) if stop is None else stop
                if arg == LEGACY:
                    j = i + 1
                    while j < end and steps[j][0] == ATTR:
                        j += 1
                else:
                    j = end
                if v is None:
                    out: list = []
                elif isinstance(v, list):
                    out = [self.walk(e, i + 1, scope, j) for e in v]
                    if isinstance(v, (ops.SetValue, ops.ListValue)):
                        out = ops.ListValue(out)
                else:
                    out = [self.walk(v, i + 1, scope, j)]
                return self.walk(out, j, scope, stop) if j < end else out
        return v

    def _attr(self, v, name, i):
        if isinstance(v, dict):
            try:
                return v[name]
            except KeyError:
                hint = _dash_hint(name)
                raise ExprError(f'"{self.texts[i]}": object has no attribute "{name}"{hint}',
                                self.offset) from None
        if v is None:
            raise ExprError(f'"{self.texts[i]}": cannot get attribute "{name}" of a null value',
                            self.offset)
        if isinstance(v, list) and i == 1 and self.source is None \
                and self.root not in ("var", "local", "count", "each"):
            raise ExprError(f'"{self.texts[i]}": {self.texts[0]} has "count" set, so its '
                            f'attributes must be accessed on specific instances, as in '
                            f'{self.texts[0]}[0].{name}', self.offset)
        hint = (blockref.plain_hint(name, self.texts[i - 1])
                if isinstance(v, (str, int)) and i >= 1 and self.source is None
                and self.root not in ("var", "local", "count", "each", "data") else "")
        raise ExprError(f'"{self.texts[i]}": a {ops.type_name(v)} value has no attributes{hint}',
                        self.offset)

    def _index(self, v, key, i):
        if isinstance(v, dict):
            if type(key) is not str:
                if key is None or isinstance(key, (list, dict)):
                    raise ExprError(f'"{self.texts[i]}": a map key must be a string, '
                                    f'got {ops.type_name(key)}', self.offset)
                key = ops.to_string(key)
            try:
                return v[key]
            except KeyError:
                raise ExprError(f'"{self.texts[i]}": object has no element with key '
                                f'"{key}"', self.offset) from None
        if isinstance(v, list):
            if isinstance(v, ops.SetValue):
                raise ExprError(f'"{self.texts[i]}": elements of a set cannot be selected by '
                                'index; convert it with tolist() first', self.offset)
            try:
                n = ops.to_int(key)
            except ExprError as e:
                raise ExprError(f'"{self.texts[i]}": invalid index: {e.message}', self.offset) from None
            if 0 <= n < len(v):
                return v[n]
            raise ExprError(f'"{self.texts[i]}": index {n} out of range for a list of '
                            f'{len(v)} element{"" if len(v) == 1 else "s"}', self.offset)
        if v is None:
            raise ExprError(f'"{self.texts[i]}": cannot index a null value', self.offset)
        raise ExprError(f'"{self.texts[i]}": cannot index a {ops.type_name(v)} value', self.offset)

    def collect_refs(self, bound, out):
        if self.source is not None:
            self.source.collect_refs(bound, out)
            for kind, arg in self.steps:
                if kind == INDEX_EXPR:
                    arg.collect_refs(bound, out)
            return
        if self.root in bound:
            for kind, arg in self.steps:
                if kind == INDEX_EXPR:
                    arg.collect_refs(bound, out)
            return
        ref = self._ref
        if ref is None:
            ref = self._ref = self._reference()
        out.append(ref)
        for kind, arg in self.steps:
            if kind == INDEX_EXPR:
                arg.collect_refs(bound, out)

    def _reference(self) -> Reference:
        parts = [self.root]
        indexes = []
        text = self.root_text
        for i, (kind, arg) in enumerate(self.steps):
            if kind == ATTR:
                parts.append(arg)
            elif kind == INDEX:
                indexes.append(len(parts))
                parts.append(arg)
            else:
                break
            text = self.texts[i]
        return Reference(tuple(parts), tuple(indexes), text, self.offset)

    def __repr__(self) -> str:
        return f"Traversal({self.text!r})"


def _dash_hint(name: str) -> str:
    """HCL names may contain "-": ``count.index-1`` is one name, not a subtraction."""
    if "-" in name:
        return f' (HCL names may contain "-"; for a subtraction put spaces around it: ' \
               f'"{name.replace("-", " - ")}")'
    return ""


class FunctionCall(Expr):
    __slots__ = ("name", "function", "args", "expand")

    def __init__(self, name, function, args, expand, offset=0):
        self.name = name
        self.function = function
        self.args = tuple(args)
        self.expand = expand
        self.offset = offset

    def evaluate(self, scope):
        if self.function.lazy:
            if self.expand:
                raise ExprError(f'function "{self.name}" does not accept "..." arguments', self.offset)
            return self.function.call_lazy(scope, self.args, self.offset)
        args = [a.evaluate(scope) for a in self.args]
        if self.expand:
            last = args.pop()
            if last is UNKNOWN:
                return UNKNOWN
            if not isinstance(last, list):
                raise ExprError(f'function "{self.name}": the argument before "..." must be '
                                f'a list, got {ops.type_name(last)}', self.offset)
            args.extend(last)
        return self.function.call(args, self.offset, scope)

    def collect_refs(self, bound, out):
        for a in self.args:
            a.collect_refs(bound, out)


class Unary(Expr):
    __slots__ = ("op", "operand")

    def __init__(self, op, operand, offset=0):
        self.op, self.operand, self.offset = op, operand, offset

    def evaluate(self, scope):
        v = self.operand.evaluate(scope)
        if v is UNKNOWN:
            return UNKNOWN
        if self.op == "-":
            return number.neg(_number(v, "-", self.offset))
        return not _bool(v, "!", self.offset)

    def collect_refs(self, bound, out):
        self.operand.collect_refs(bound, out)


def _number(v, op, offset):
    t = type(v)
    if t is int or t is number.Number or t is float:
        return v
    if v is None:
        raise ExprError(f'invalid operand for "{op}": a number is required, got null', offset)
    try:
        return ops.to_number(v)
    except ExprError:
        if type(v) is str:
            raise ExprError(f'invalid operand for "{op}": a number is required, got "{v}"', offset) from None
        raise ExprError(f'invalid operand for "{op}": a number is required, '
                        f'got {ops.type_name(v)}', offset) from None


def _bool(v, op, offset):
    if type(v) is bool:
        return v
    try:
        return ops.to_bool(v)
    except ExprError:
        raise ExprError(f'invalid operand for "{op}": a bool is required, '
                        f'got {ops.type_name(v) if type(v) is not str else repr(v)}', offset) from None


ARITHMETIC = {"+": number.add, "-": number.sub, "*": number.mul, "/": number.div, "%": number.mod}
COMPARE = {"<": lambda a, b: number.compare(a, b) < 0, ">": lambda a, b: number.compare(a, b) > 0,
           "<=": lambda a, b: number.compare(a, b) <= 0, ">=": lambda a, b: number.compare(a, b) >= 0}


class Arithmetic(Expr):
    __slots__ = ("op", "fn", "left", "right")

    def __init__(self, op, left, right, offset=0):
        self.op, self.fn, self.left, self.right, self.offset = op, ARITHMETIC[op], left, right, offset

    def evaluate(self, scope):
        a = self.left.evaluate(scope)
        b = self.right.evaluate(scope)
        if a is UNKNOWN or b is UNKNOWN:
            return UNKNOWN
        ta, tb = type(a), type(b)
        if not (ta is int or ta is number.Number):
            a = _number(a, self.op, self.offset)
        if not (tb is int or tb is number.Number):
            b = _number(b, self.op, self.offset)
        try:
            return self.fn(a, b)
        except ExprError as e:
            raise ExprError(e.message, self.offset) from None

    def collect_refs(self, bound, out):
        self.left.collect_refs(bound, out)
        self.right.collect_refs(bound, out)


class Compare(Expr):
    __slots__ = ("op", "fn", "left", "right")

    def __init__(self, op, left, right, offset=0):
        self.op, self.fn, self.left, self.right, self.offset = op, COMPARE[op], left, right, offset

    def evaluate(self, scope):
        a = self.left.evaluate(scope)
        b = self.right.evaluate(scope)
        if a is UNKNOWN or b is UNKNOWN:
            return UNKNOWN
        return self.fn(_number(a, self.op, self.offset), _number(b, self.op, self.offset))

    def collect_refs(self, bound, out):
        self.left.collect_refs(bound, out)
        self.right.collect_refs(bound, out)


class Equality(Expr):
    __slots__ = ("negate", "left", "right")

    def __init__(self, op, left, right, offset=0):
        self.negate, self.left, self.right, self.offset = op == "!=", left, right, offset

    def evaluate(self, scope):
        a = self.left.evaluate(scope)
        b = self.right.evaluate(scope)
        if contains_unknown(a) or contains_unknown(b):
            return UNKNOWN
        return ops.equals(a, b) != self.negate

    def collect_refs(self, bound, out):
        self.left.collect_refs(bound, out)
        self.right.collect_refs(bound, out)


class Logical(Expr):
    """``&&`` and ``||``; a known deciding operand wins over an unknown one. Both
    operands are always evaluated (Terraform does not short-circuit: an error on
    the right of ``true ||`` is still an error)."""

    __slots__ = ("is_and", "left", "right")

    def __init__(self, op, left, right, offset=0):
        self.is_and, self.left, self.right, self.offset = op == "&&", left, right, offset

    def evaluate(self, scope):
        op = "&&" if self.is_and else "||"
        decisive = not self.is_and   # && is decided by false, || by true
        a = self.left.evaluate(scope)
        if a is not UNKNOWN:
            a = _bool(a, op, self.offset)
        b = self.right.evaluate(scope)
        if b is not UNKNOWN:
            b = _bool(b, op, self.offset)
        if a is decisive or b is decisive:
            return decisive
        if a is UNKNOWN or b is UNKNOWN:
            return UNKNOWN
        return b

    def collect_refs(self, bound, out):
        self.left.collect_refs(bound, out)
        self.right.collect_refs(bound, out)


class InconsistentResults(ExprError):
    """A conditional's two results have no common type. HCL's value of such a
    conditional is unknown of any type, so a conditional around it that does not
    choose it takes no type from it."""

    def __init__(self, message: str, offset, node):
        super().__init__(message, offset)
        self.node = node


class Conditional(_Choice):
    """``cond ? then : otherwise``."""

    __slots__ = ()

    def evaluate(self, scope):
        c = self.cond.evaluate(scope)
        if c is UNKNOWN:
            return UNKNOWN
        if c is None:
            raise ExprError("the condition value is null", self.cond.offset)
        if type(c) is not bool:
            try:
                c = ops.to_bool(c)
            except ExprError:
                raise ExprError(f"the condition must be a bool, got {ops.type_name(c)}",
                                self.cond.offset) from None
        chosen, other = (self.then, self.otherwise) if c else (self.otherwise, self.then)
        value = chosen.evaluate(scope)
        if value is None or value is UNKNOWN:
            return value
        if type(other) is Literal:
            o = other.value
        else:
            try:
                o = other.evaluate(scope)
            except ExprError as e:
                # Terraform reports no error from the branch not taken, but still
                # refuses a result of another kind than what that branch builds
                if isinstance(e, InconsistentResults) and e.node is other:
                    return value
                kind = static_kind(other, scope)
                if kind is not None and not _kinds_fit(_kind_of(value), kind):
                    a, b = (ops.type_name(value), kind) if c else (kind, ops.type_name(value))
                    raise InconsistentResults(f"inconsistent conditional result types: the true result "
                                              f"is {a} but the false result is {b}", self.offset,
                                              self) from None
                if kind == "string" and (type(value) is bool or number.is_number(value)):
                    return ops.to_string(value)
                if kind == "object" or kind == "tuple":
                    return _unify_with_partial(value, other, scope, c, self)
                return value
        return _unify_results(value, o, c, self)


def static_kind(node, scope) -> str | None:
    """The kind of value an expression has even when evaluating it fails, as HCL types
    it (``[...]`` a tuple, ``a + b`` a number), or None when a failure leaves it
    unknown (a ``for`` expression over a collection that fails, a function call: HCL
    gives a failed call the dynamic type)."""
    t = type(node)
    if t is Literal:
        return _kind_of(node.value)
    if t is TupleCons:
        return "tuple"
    if t is ObjectCons:
        return "object"
    if t is ForExpr:
        try:
            node.collection.evaluate(scope)
        except ExprError:
            return _kind_despite_failure(node, scope)
        return "object" if node.is_object else "tuple"
    if t is Template:
        return "string"
    if t is Arithmetic:
        return "number"
    if t is Unary:
        return "number" if node.op == "-" else "bool"
    if t is Compare or t is Equality or t is Logical:
        return "bool"
    if t is Conditional:
        kind = _partial_type(node, scope).kind
        return None if kind == "any" else kind
    return None


def _kind_despite_failure(node, scope) -> str | None:
    """The kind HCL still builds from ``node`` when evaluating part of it fails, or
    None: ``[...]`` is a tuple (the failing element is unknown), and ``[for ...]`` or
    ``{for ...}`` over such a collection keeps its kind unless an ``if`` clause or an
    object key that is not constant may be unknown (which makes the result unknown)."""
    t = type(node)
    if t is TupleCons:
        return "tuple"
    if t is ObjectCons:
        return "object"
    if t is not ForExpr:
        return None
    if any(e is not None and not e.is_constant for e in (node.cond, node.key_expr)):
        return None
    try:
        node.collection.evaluate(scope)
    except ExprError:
        if _kind_despite_failure(node.collection, scope) is None:
            return None
    return "object" if node.is_object else "tuple"


def _partial_type(node, scope):
    """The type of a ``[...]`` or ``{...}`` whose evaluation fails: each element's own
    type, null's dynamic type where an element fails (as HCL types it)."""
    from . import types as T
    if type(node) is TupleCons:
        elems = []
        for e in node.items:
            try:
                elems.append(T.type_of(e.evaluate(scope)))
            except ExprError:
                elems.append(_partial_type(e, scope))
        return T.Type("tuple", elems=tuple(elems))
    if type(node) is ObjectCons:
        attrs = {}
        for k, v in node.items:
            try:
                key = k.evaluate(scope)
            except ExprError:
                return T.ANY
            if type(key) is not str:
                return T.ANY
            try:
                attrs[key] = T.type_of(v.evaluate(scope))
            except ExprError:
                attrs[key] = _partial_type(v, scope)
        return T.Type("object", attrs=tuple((k, t, False, None) for k, t in sorted(attrs.items())))
    if type(node) is ForExpr:
        return _partial_for_type(node, scope)
    if type(node) is Conditional:
        return _partial_conditional_type(node, scope)
    kind = static_kind(node, scope)
    return {"string": T.STRING, "number": T.NUMBER, "bool": T.BOOL}.get(kind or "", T.ANY)


def _type_or_partial(node, scope):
    from . import types as T
    try:
        return T.type_of(node.evaluate(scope))
    except ExprError:
        return _partial_type(node, scope)


def _partial_conditional_type(node, scope):
    """A failing conditional's type in HCL: what its two results unify to (a literal
    null taking the other's), dynamic when they do not."""
    from . import types as T
    a, b = _type_or_partial(node.then, scope), _type_or_partial(node.otherwise, scope)
    if _is_null_literal(node.then):
        return b
    if _is_null_literal(node.otherwise):
        return a
    if T.ANY in (a, b):
        return T.ANY
    return T.unify([a, b]) or T.ANY


def _is_null_literal(node) -> bool:
    return type(node) is Literal and node.value is None


def _unknown_elements(t) -> list | None:
    """What HCL iterates in a failing collection of known shape: a tuple's indexes or
    an object's attribute names, each with an unknown value; None for any other."""
    if t.kind == "tuple":
        return [(i, UNKNOWN) for i in range(len(t.elems))]
    if t.kind == "object":
        return [(a[0], UNKNOWN) for a in t.attrs]
    return None


def _partial_for_type(node, scope):
    """A failing ``for`` expression's type in HCL: dynamic when an ``if`` or a key
    fails or its collection has no known shape; else each element with its own
    (partial) type, the first of duplicate object keys kept."""
    from . import types as T
    try:
        coll = node.collection.evaluate(scope)
        pairs = iterate_collection(coll, node.collection.offset) if coll is not UNKNOWN else None
    except ExprError:
        pairs = _unknown_elements(_partial_type(node.collection, scope))
    if pairs is None:
        return T.ANY
    child = scope.child_loop()
    items = []
    for k, v in pairs:
        if node.key_var is not None:
            child.loop[node.key_var] = k
        child.loop[node.value_var] = v
        key = None
        try:
            if node.cond is not None:
                c = node.cond.evaluate(child)
                if c is UNKNOWN or c is None:
                    return T.ANY
                if not _bool(c, "if", node.cond.offset):
                    continue
            if node.key_expr is not None:
                key = node.key_expr.evaluate(child)
                if key is None or key is UNKNOWN:
                    return T.ANY
                key = key if type(key) is str else ops.to_string(key)
        except ExprError:
            return T.ANY
        items.append((key, _type_or_partial(node.value_expr, child)))
    if not node.is_object:
        return T.Type("tuple", elems=tuple(vt for _, vt in items))
    attrs: dict = {}
    for key, vt in items:
        if node.group:
            attrs.setdefault(key, []).append(vt)
        else:
            attrs.setdefault(key, vt)
    if node.group:
        attrs = {key: T.Type("tuple", elems=tuple(vts)) for key, vts in attrs.items()}
    return T.Type("object", attrs=tuple((k, t, False, None) for k, t in sorted(attrs.items())))


def _unify_with_partial(value, other, scope, cond: bool, node):
    from . import types as T
    partial = _partial_type(other, scope)
    t = T.unify([T.type_of(value), partial])
    if t is None:
        a, b = (ops.type_name(value), partial.kind) if cond else (partial.kind, ops.type_name(value))
        raise InconsistentResults(f"inconsistent conditional result types: the true result is {a} but "
                                  f"the false result is {b}", node.offset, node)
    return T.conform(value, t)


def _kind_of(v) -> str | None:
    return None if v is None or v is UNKNOWN else ops.type_name(v)


_SEQUENCES = {"tuple", "list", "set"}
_MAPPINGS = {"object", "map"}


def _kinds_fit(a: str | None, b: str | None) -> bool:
    """Whether values of kinds ``a`` and ``b`` can have a common type at all."""
    if a is None or b is None or a == b:
        return True
    if a in _SEQUENCES or b in _SEQUENCES:
        return a in _SEQUENCES and b in _SEQUENCES
    if a in _MAPPINGS or b in _MAPPINGS:
        return a in _MAPPINGS and b in _MAPPINGS
    return "string" in (a, b)          # primitives: anything converts to a string


def _unify_results(value, other, cond: bool, node):
    """The chosen result converted to the type both results share, as Terraform
    types a conditional: ``true ? 1 : "b"`` is ``"1"``; a number and a bool, or a
    list and an object, have none and are an error."""
    tv, to = type(value), type(other)
    if other is None or other is UNKNOWN or (tv is to and (tv is str or tv is bool or tv is int)):
        return value
    from . import types as T
    t = T.unify([T.type_of(value), T.type_of(other)])
    if t is None:
        a, b = (value, other) if cond else (other, value)
        raise InconsistentResults(f"inconsistent conditional result types: the true result is "
                                  f"{ops.type_name(a)} but the false result is {ops.type_name(b)}",
                                  node.offset, node)
    return T.conform(value, t)


def iterate_collection(coll, offset):
    """(key, value) pairs of a list (index), set (value, value) or map (sorted key)."""
    if isinstance(coll, ops.SetValue):
        return [(v, v) for v in coll]
    if isinstance(coll, list):
        return list(enumerate(coll))
    if isinstance(coll, dict):
        return ops.sorted_items(coll)
    if coll is None:
        raise ExprError("a for expression cannot iterate over a null value", offset)
    raise ExprError(f"a for expression needs a list, set or map, got {ops.type_name(coll)}", offset)


class ForExpr(Expr):
    """``[for i, x in xs : e if c]`` and ``{for k, v in m : ke => ve... if c}``."""

    __slots__ = ("key_var", "value_var", "collection", "key_expr", "value_expr",
                 "cond", "group", "is_object")

    def __init__(self, key_var, value_var, collection, key_expr, value_expr, cond,
                 group, is_object, offset=0):
        self.key_var, self.value_var, self.collection = key_var, value_var, collection
        self.key_expr, self.value_expr, self.cond = key_expr, value_expr, cond
        self.group, self.is_object, self.offset = group, is_object, offset

    def evaluate(self, scope) -> Any:
        coll = self.collection.evaluate(scope)
        if coll is UNKNOWN:
            return UNKNOWN
        child = scope.child_loop()
        loop = child.loop
        key_var, value_var = self.key_var, self.value_var
        cond, key_expr, value_expr = self.cond, self.key_expr, self.value_expr
        items = []
        for k, v in iterate_collection(coll, self.collection.offset):
            spend(child, self.offset)
            if key_var is not None:
                loop[key_var] = k
            loop[value_var] = v
            if cond is not None:
                c = cond.evaluate(child)
                if c is UNKNOWN:
                    return UNKNOWN
                if not _bool(c, "if", cond.offset):
                    continue
            if key_expr is not None:
                key = key_expr.evaluate(child)
                if key is UNKNOWN:
                    return UNKNOWN
                if type(key) is not str:
                    if key is None:
                        raise ExprError("a for expression produced a null object key",
                                        key_expr.offset)
                    key = ops.to_string(key, "object key: ")
                items.append((key, value_expr.evaluate(child)))
            else:
                items.append(value_expr.evaluate(child))
        if not self.is_object:
            return items
        out: dict = {}
        if self.group:
            for key, val in items:
                out.setdefault(key, []).append(val)
            return out
        for key, val in items:
            if key in out:
                raise ExprError(f'duplicate object key "{key}" in for expression; '
                                'use "..." after the value to group values by key', self.offset)
            out[key] = val
        return out

    def collect_refs(self, bound, out):
        self.collection.collect_refs(bound, out)
        inner = set(bound)
        inner.add(self.value_var)
        if self.key_var is not None:
            inner.add(self.key_var)
        inner = frozenset(inner)
        if self.key_expr is not None:
            self.key_expr.collect_refs(inner, out)
        self.value_expr.collect_refs(inner, out)
        if self.cond is not None:
            self.cond.collect_refs(inner, out)
