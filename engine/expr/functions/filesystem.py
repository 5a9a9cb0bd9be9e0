"""Filesystem functions: file fileexists fileset templatefile abspath basename
dirname.

Relative paths are relative to the module's directory (``path.module``; the
config directory for the root module), whatever the working directory is.
Every file the functions look at is recorded in the scope's :class:`FileAccess`,
so the config digest behind stale-plan refusal covers it. Without a
``FileAccess`` in the scope (an expression evaluated outside a configuration)
the file functions are errors.
"""
from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from typing import Callable

from kvmnet.engine import limits

from .. import ops
from ..errors import ExprError
from . import _args as A

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class FileAccess:
    """Where the file functions of one module look, and what they have read.

    ``reads`` maps what was looked at (``file:/abs/path``, ``exists:/abs/path``,
    ``fileset:/abs/dir:pattern``) to a digest of what was found; :meth:`digest`
    folds them into one hash for the config digest. ``on_read(self)`` is called
    after each new entry (the engine updates the config digest with it).
    ``in_template`` is set inside ``templatefile``, which may not nest.
    """

    def __init__(self, module_dir: str | os.PathLike, on_read: Callable[["FileAccess"], None] | None = None,
                 reads: dict[str, str] | None = None, in_template: bool = False,
                 root_dir: str | os.PathLike | None = None):
        self.module_dir = os.path.abspath(module_dir)
        self.root_dir = self.module_dir if root_dir is None else os.path.abspath(root_dir)
        self.on_read = on_read
        self.reads: dict[str, str] = {} if reads is None else reads
        self.in_template = in_template

    def inside_template(self) -> "FileAccess":
        return FileAccess(self.module_dir, self.on_read, self.reads, True, self.root_dir)

    def resolve(self, path: str) -> str:
        """An absolute path. A relative one is relative to the module's directory,
        unless it starts with what ``path.module`` or ``path.root`` read (those are
        relative to the working directory, as in Terraform, so
        ``"${path.module}/x"`` names the module's ``x``)."""
        if os.path.isabs(path):
            return go_clean(path)
        norm = posixpath.normpath(path)
        for anchor in {_shown(self.module_dir), _shown(self.root_dir)}:
            if anchor != "." and (norm == anchor or norm.startswith(anchor + "/")):
                return go_clean(os.path.join(os.getcwd(), path))
        return go_clean(os.path.join(self.module_dir, path))

    def record(self, key: str, found: str) -> None:
        if self.reads.get(key) != found:
            self.reads[key] = found
            if self.on_read is not None:
                self.on_read(self)

    def digest(self) -> str:
        h = hashlib.sha256()
        for key, found in sorted(self.reads.items()):
            h.update(key.encode() + b"\0" + found.encode() + b"\0")
        return h.hexdigest()

    def read_text(self, path: str) -> str:
        full = self.resolve(path)
        try:
            if os.path.isdir(full):
                raise ExprError(f'"{path}" is a directory, not a file')
            with open(full, "rb") as f:
                data = f.read(limits.MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            self.record("file:" + full, "absent")
            raise ExprError(f'no file exists at "{path}"; this function works only with files '
                            "that are distributed as part of the configuration source code") from None
        except OSError as e:
            raise ExprError(f'failed to read file "{path}": {e.strerror}') from None
        if len(data) > limits.MAX_FILE_BYTES:
            raise ExprError(f'file "{path}" is larger than {limits.MAX_FILE_BYTES} bytes')
        self.record("file:" + full, hashlib.sha256(data).hexdigest())
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ExprError(f'contents of "{path}" are not valid UTF-8') from None

    def exists(self, path: str) -> bool:
        full = self.resolve(path)
        try:
            mode = os.stat(full).st_mode
        except FileNotFoundError:
            self.record("exists:" + full, "absent")
            return False
        except OSError as e:
            raise ExprError(f'failed to stat "{path}": {e.strerror}') from None
        if stat.S_ISDIR(mode):
            raise ExprError(f'"{path}" is a directory, not a file')
        self.record("exists:" + full, "present")
        return True

    def fileset(self, path: str, pattern: str) -> list[str]:
        """Terraform's fileset: the pattern is joined to the path and cleaned (so
        ``*/`` is ``*`` and ``../x`` leaves the path), the files it matches are
        given relative to the path."""
        base = self.resolve(path)
        full = go_clean(os.path.join(base, pattern))
        matcher = glob_regex(full)
        segments = full.split("/")
        static = []
        for seg in segments[:-1]:
            if any(ch in seg for ch in "*?[{\\"):
                break
            static.append(seg)
        root = "/".join(static) or "/"
        found = []
        seen = 0
        for walk_root, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                seen += 1
                if seen > limits.MAX_COLLECTION_ITEMS:
                    raise ExprError(f"more than {limits.MAX_COLLECTION_ITEMS} files under "
                                    f'"{path}"')
                candidate = os.path.join(walk_root, name)
                if matcher.fullmatch(candidate) and os.path.isfile(candidate):
                    found.append(os.path.relpath(candidate, base).replace(os.sep, "/"))
        found.sort()
        self.record(f"fileset:{base}:{pattern}", hashlib.sha256("\0".join(found).encode()).hexdigest())
        return found


def glob_regex(pattern: str) -> re.Pattern:
    """doublestar's glob syntax (Terraform's fileset): ``*`` and ``?`` within a
    path segment, ``**`` for any number of segments, ``[abc]``/``[^a-z]``
    classes (``!`` is an ordinary character there), ``{a,b}`` alternatives,
    ``\\`` escapes."""
    out, i, n, depth = [], 0, len(pattern), 0
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i) and (i == 0 or pattern[i - 1] == "/"):
                end = i + 2
                if end == n:
                    out.append(".*")
                    i = end
                    continue
                if pattern[end] == "/":
                    out.append("(?:[^/]*/)*")
                    i = end + 1
                    continue
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                raise A.bad("pattern", f'syntax error in pattern "{pattern}"')
            body = pattern[i + 1:j]
            negate = body[:1] == "^"
            if negate:
                body = body[1:]
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\").replace("^", "\\^")
                       .replace("[", "\\[") + "]")
            i = j + 1
        elif c == "{":
            depth += 1
            out.append("(?:")
            i += 1
        elif c == "}" and depth:
            depth -= 1
            out.append(")")
            i += 1
        elif c == "," and depth:
            out.append("|")
            i += 1
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    if depth:
        raise A.bad("pattern", f'syntax error in pattern "{pattern}"')
    try:
        return re.compile("".join(out))
    except re.error:
        raise A.bad("pattern", f'syntax error in pattern "{pattern}"') from None


def _shown(directory: str) -> str:
    """A directory as ``path.module`` reads it: relative to the working directory."""
    try:
        return os.path.relpath(directory)
    except ValueError:
        return os.path.normpath(directory)


def go_clean(path: str) -> str:
    """Go's filepath.Clean (Python's normpath keeps a leading "//")."""
    cleaned = posixpath.normpath(path) if path else "."
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def _files(scope) -> FileAccess:
    files = getattr(scope, "files", None)
    if files is None:
        raise ExprError("file functions can only be used in a configuration")
    return files


def _file(scope, path):
    return _files(scope).read_text(A.string(path, "path"))


def _fileexists(scope, path):
    return _files(scope).exists(A.string(path, "path"))


def _fileset(scope, path, pattern):
    return ops.make_set(_files(scope).fileset(A.string(path, "path"), A.string(pattern, "pattern")))


def _templatefile(scope, path, variables):
    from ..parser import parse_template
    from ..scope import Scope
    files = _files(scope)
    if files.in_template:
        raise ExprError("cannot recursively call templatefile from inside another template function")
    path = A.string(path, "path")
    if not isinstance(variables, dict):
        raise A.bad("vars", f"must be a map or object, got {ops.type_name(variables)}")
    for name in variables:
        if not _NAME.fullmatch(name):
            raise A.bad("vars", f'invalid template variable name "{name}": must start with a '
                                "letter or underscore, followed by letters, digits, underscores and dashes")
    text = files.read_text(path)
    try:
        node = parse_template(text) if not text.startswith("<<") else parse_template("${\"\"}" + text)
        inner = Scope(variables={}, locals={}, loop=dict(variables))
        inner.files = files.inside_template()
        inner.marks = getattr(scope, "marks", None)
        return node.evaluate(inner)
    except ExprError as e:
        where = f" line {e.offset}" if e.offset is not None else ""
        raise ExprError(f'in template file "{path}"{where}: {e.message}') from None


def _abspath(scope, path):
    return _files(scope).resolve(A.string(path, "path"))


def _basename(path):
    p = A.string(path, "path")
    if p == "":
        return "."
    p = p.rstrip("/")
    if p == "":
        return "/"
    return p.rsplit("/", 1)[-1]


def _dirname(path):
    p = A.string(path, "path")
    i = p.rfind("/")
    return go_clean(p[:i + 1])


FUNCTIONS: list[tuple] = [
    ("abspath", _abspath, 1, 1, {"scoped": True}),
    ("basename", _basename, 1, 1, {}),
    ("dirname", _dirname, 1, 1, {}),
    ("file", _file, 1, 1, {"scoped": True}),
    ("fileexists", _fileexists, 1, 1, {"scoped": True}),
    ("fileset", _fileset, 2, 2, {"scoped": True}),
    ("templatefile", _templatefile, 2, 2, {"scoped": True, "nested_unknown": True}),
]
