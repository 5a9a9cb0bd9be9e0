"""Did-you-mean: the closest known name to a mistyped one, for error messages."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known name most like ``word`` (None when none is close enough)."""
    names = [str(k) for k in known]
    got = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    if not got:   # a different case is a near miss too
        low = {n.lower(): n for n in names}
        return low.get(word.lower())
    return got[0]


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``' (did you mean "X"?)'``, or ``''`` when nothing is close."""
    c = closest(word, known)
    return f' (did you mean "{c}"?)' if c is not None and c != word else ""
