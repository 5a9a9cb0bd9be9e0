"""The one error type of the expression language."""
from __future__ import annotations


class ExprError(Exception):
    """An expression could not be parsed, converted or evaluated.

    ``message`` is the user-facing text (no file or line: the engine adds those).
    ``offset`` is the source line of the sub-expression where the problem starts,
    when known (the node's ``offset``: its line in the file, or in the text of a
    lone expression). ``path`` is the position inside a compiled raw value
    (``("ip", 0, "address")``) when the error came from :func:`compile_value` or
    :meth:`Compiled.evaluate`; :attr:`attribute` renders it as ``ip[0].address``.
    """

    def __init__(self, message: str, offset: int | None = None, path: tuple = ()):
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.path = path

    @property
    def attribute(self) -> str:
        return render_path(self.path)

    def at(self, *prefix) -> "ExprError":
        """Prepend ``prefix`` to the path (used while unwinding nested values)."""
        self.path = tuple(prefix) + self.path
        return self

    def __str__(self) -> str:
        return self.message


def render_path(path: tuple) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out
