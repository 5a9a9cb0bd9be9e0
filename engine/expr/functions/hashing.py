"""Hash functions: md5 sha1 sha256 sha512 (hex digests of the UTF-8 bytes) and
uuidv5."""
from __future__ import annotations

import hashlib
import uuid

from ..errors import ExprError
from . import _args as A

_NAMESPACES = {"dns": uuid.NAMESPACE_DNS, "url": uuid.NAMESPACE_URL,
               "oid": uuid.NAMESPACE_OID, "x500": uuid.NAMESPACE_X500}


def _digest(algorithm: str):
    def impl(s):
        return hashlib.new(algorithm, A.string(s, "str").encode()).hexdigest()
    impl.__name__ = f"_{algorithm}"
    return impl


def _uuidv5(namespace, name):
    ns_text, text = A.string(namespace, "namespace"), A.string(name, "name")
    ns = _NAMESPACES.get(ns_text)
    if ns is None:
        try:
            ns = uuid.UUID(ns_text)
        except ValueError:
            raise ExprError(f'uuidv5() doesn\'t support namespace "{ns_text}" (must be '
                            '"dns", "url", "oid", "x500" or a UUID)') from None
    return str(uuid.uuid5(ns, text))


FUNCTIONS: list[tuple] = [
    ("md5", _digest("md5"), 1, 1, {}),
    ("sha1", _digest("sha1"), 1, 1, {}),
    ("sha256", _digest("sha256"), 1, 1, {}),
    ("sha512", _digest("sha512"), 1, 1, {}),
    ("uuidv5", _uuidv5, 2, 2, {}),
]
