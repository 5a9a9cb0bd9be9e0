"""Special values shared by the evaluator, the planner and providers."""
from __future__ import annotations


class _Unknown:
    """A value only known after apply (a network's uuid, a NIC's generated mac).

    A singleton: compare with ``is UNKNOWN`` or use :func:`is_unknown`. Any
    operation of the expression evaluator on an unknown value yields UNKNOWN.
    """

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(known after apply)"

    def __reduce__(self):
        return (_Unknown, ())

    def __bool__(self) -> bool:  # never silently truthy
        raise TypeError("an unknown value has no truth value")


UNKNOWN = _Unknown()


def is_unknown(v) -> bool:
    return v is UNKNOWN


def contains_unknown(v) -> bool:
    if v is UNKNOWN:
        return True
    if isinstance(v, dict):
        return any(contains_unknown(x) for x in v.values())
    if isinstance(v, (list, tuple)):
        return any(contains_unknown(x) for x in v)
    return False
