"""Limits on what a configuration may ask of kvmnet, so that no input can exhaust
memory or Python's stack: each is checked where the thing is built, and breaking
one is an ordinary ``FILE:LINE`` error.

Only the instance ceiling is meant to be tuned (environment variable
``KVMNET_MAX_INSTANCES``); the others are far above what any host's networking
needs.
"""
from __future__ import annotations

import os

MAX_FILE_BYTES = 4 * 1024 * 1024        # one configuration or variables file
MAX_STRING_CHARS = 1024 * 1024          # one string literal, heredoc, or computed string
MAX_NESTING = 64                        # blocks in blocks; brackets/calls/operators in expressions
MAX_NUMBER_DIGITS = 300                 # digits of a number literal (larger is out of range)
MAX_NUMBER_EXPONENT = 500               # a number literal's size in decimal places either side of the point
MAX_COLLECTION_ITEMS = 100_000          # elements a function or for expression may build
DEFAULT_MAX_INSTANCES = 10_000          # instances of one resource from count / for_each
INSTANCES_ENV = "KVMNET_MAX_INSTANCES"


class LimitError(Exception):
    """A limit is exceeded; ``line`` (when known) is where."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


def max_instances() -> int:
    """The ceiling on one resource's ``count``/``for_each`` instances.

    ``KVMNET_MAX_INSTANCES`` overrides the default; a value that is not a whole
    number ≥ 1 is an error, not silently replaced by the default.
    """
    raw = os.environ.get(INSTANCES_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_MAX_INSTANCES
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12 or int(text) < 1:
        raise LimitError(f"{INSTANCES_ENV}={raw!r} is not a whole number ≥ 1")
    return int(text)
