"""Diagnostics: errors and warnings as plain values, collected over a whole run.

A diagnostic reads ``FILE:LINE: ADDRESS: message`` (parts that are not known are
left out); the CLI prints each as one ``Error: …`` / ``Warning: …`` line, so one
``kvmnet validate`` can report every problem at once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field


_CONTROL = {i: f"\\x{i:02x}" for i in [*range(32), 127]} | {10: "\\n", 13: "\\r", 9: "\\t"}


def one_line(text: str) -> str:
    """``text`` with control characters escaped: a message quoting a user's value
    (a string holding a newline) stays one line, so every error line starts with
    FILE:LINE."""
    return text.translate(_CONTROL) if not text.isprintable() else text


def _names(message: str, attribute: str) -> bool:
    """True when ``message`` already names ``attribute`` as a word of its own (so
    attribute ``n`` is not found in "number out of range")."""
    return re.search(rf"(?<!\w){re.escape(attribute)}(?!\w)", message) is not None


@dataclass(frozen=True)
class Diagnostic:
    message: str
    file: str | None = None
    line: int | None = None
    address: str | None = None
    attribute: str | None = None
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(f"{self.file}:{self.line}" if self.line else self.file)
        if self.address:
            parts.append(self.address)
        prefix = ": ".join(parts)
        msg = self.message
        if self.attribute and not _names(msg, self.attribute):
            msg = f"{self.attribute}: {msg}"
        return one_line(f"{prefix}: {msg}" if prefix else msg)

    def to_json(self) -> dict:
        return {
            "severity": self.severity,
            "summary": self.message,
            "file": self.file,
            "line": self.line,
            "address": self.address,
            "attribute": self.attribute,
            "text": str(self),
        }


@dataclass
class Diagnostics:
    """An ordered collection of diagnostics; ``bool(d)`` is true when it holds errors."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, message: str, **where) -> None:
        self.items.append(Diagnostic(message, **where))

    def warn(self, message: str, **where) -> None:
        self.items.append(Diagnostic(message, severity="warning", **where))

    def extend(self, other) -> None:
        self.items.extend(other.items if isinstance(other, Diagnostics) else other)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]

    def __bool__(self) -> bool:
        return bool(self.errors)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class DiagnosticError(Exception):
    """Raised to stop a run; carries every diagnostic found so far."""

    def __init__(self, diagnostics: Diagnostics | list[Diagnostic] | Diagnostic):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        if isinstance(diagnostics, list):
            diagnostics = Diagnostics(list(diagnostics))
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics.errors))
