"""The session file system: per-session files and directories stored in the database.

Used by the `session_file_system` tools and by the `.../fs/{path}` API. Every path is normalised
to an absolute form ("/a/b.txt", Unicode NFC) and can never leave the session's root.

Limits: SESSION_FILE_MAX_BYTES per file; per session SESSION_FS_MAX_FILES entries and SESSION_FS_MAX_BYTES,
where every entry (directories too) costs its content plus its path in UTF-8 bytes, so empty files with long
names are not free.
"""

import base64
import posixpath
import time
import unicodedata

import re2
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import BigIntegerField, Count, F, Func, Q, Sum, Value
from django.db.models.functions import Left, StrIndex, Substr
from django.db.models.lookups import Exact

from everruns.core.dates import rfc3339
from everruns.core.errors import AppError, Conflict, Forbidden, NotFound, PayloadTooLarge, ValidationError
from sessions.models import Session, SessionFile

MAX_PATH = 1024
MAX_NAME = 255
MAX_PATTERN = 1000  # characters of a grep pattern
# Characters that make a name display as something else: the Unicode bidirectional controls
# (embeddings, overrides, isolates and marks). Control characters (category Cc, NUL included),
# lone surrogates (Cs), line/paragraph separators (Zl, Zp) and format characters (Cf: zero-width space,
# joiners, word joiner, byte order mark, soft hyphen, invisible operators) are refused by category, so two names
# that look the same are the same name. Emoji joined with U+200D are refused with them: a name is not the place.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Invisible although not of a refused category: the combining grapheme joiner (Mn) and the Hangul fillers (Lo).
INVISIBLE = frozenset("\u034f\u115f\u1160\u3164\uffa0")
REFUSED_CATEGORIES = {
    "Cc": "Control characters",
    "Cs": "Surrogates",
    "Zl": "Line separators",
    "Zp": "Line separators",
    "Cf": "Invisible format characters",
}


def _invalid(message: str):
    return ValidationError("Invalid path", details={"path": [message]})


def _check_characters(path: str) -> None:
    if "\x00" in path:
        raise _invalid("NUL bytes are not allowed.")
    for char in path:
        if char in BIDI_CONTROLS:
            raise _invalid(f"Bidirectional control characters are not allowed (U+{ord(char):04X}).")
        if char in INVISIBLE:
            raise _invalid(f"Invisible characters are not allowed (U+{ord(char):04X}).")
        kind = REFUSED_CATEGORIES.get(unicodedata.category(char))
        if kind:
            raise _invalid(f"{kind} are not allowed (U+{ord(char):04X}).")


def normalize(path: str) -> str:
    if not isinstance(path, str):
        raise _invalid("Must be a string.")
    if len(path) > MAX_PATH:
        raise _invalid(f"At most {MAX_PATH} characters.")
    _check_characters(path)
    # One spelling per name: "é" typed precomposed or as "e" + combining accent is the same file.
    path = unicodedata.normalize("NFC", path)
    if len(path) > MAX_PATH:
        raise _invalid(f"At most {MAX_PATH} characters.")
    if "\\" in path:
        raise _invalid("Backslashes are not allowed.")
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise _invalid("'..' is not allowed.")
        if len(part) > MAX_NAME:
            raise _invalid(f"A name is at most {MAX_NAME} characters.")
        parts.append(part)
    if len(parts) > settings.SESSION_FS_MAX_DEPTH:
        raise _invalid(f"At most {settings.SESSION_FS_MAX_DEPTH} levels deep.")
    return "/" + "/".join(parts)


def _parent(path: str) -> str:
    return posixpath.dirname(path) or "/"


def _get(session_id, path: str) -> SessionFile | None:
    return SessionFile.objects.filter(session_id=session_id, path=path).first()


def _below(session_id, directory: str):
    """Every entry strictly below `directory`, matched exactly. Not `path__startswith`: that is a LIKE,
    which ignores case on SQLite (a recursive delete of /A would reach /a/...). `=` on the leading
    characters is exact on PostgreSQL and SQLite alike."""
    rows = SessionFile.objects.filter(session_id=session_id)
    if directory == "/":
        return rows
    prefix = directory + "/"
    return rows.filter(Exact(Left("path", len(prefix)), Value(prefix)))


def _directly_below(session_id, directory: str):
    """The entries of `directory` itself: below it, with no "/" after its prefix."""
    start = len(directory.rstrip("/")) + 2  # 1-based position of the first character after the prefix
    return _below(session_id, directory).filter(Exact(StrIndex(Substr("path", start), Value("/")), 0))


class OctetLength(Func):
    """A string's length in bytes. SQLite has octet_length() only from 3.43 (Debian 13 has 3.40)."""

    function = "OCTET_LENGTH"
    output_field = BigIntegerField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="LENGTH(CAST(%(expressions)s AS BLOB))", **extra_context)


def _lock_session(session_id) -> None:
    if not Session.objects.select_for_update().filter(pk=session_id).exists():
        raise NotFound("Session not found")


def _missing_parents(session_id, path: str) -> list[str]:
    """The ancestors of `path` that do not exist yet, outermost first; a Conflict if one is a file."""
    chain = []
    parent = _parent(path)
    while parent != "/":
        chain.append(parent)
        parent = _parent(parent)
    existing = dict(
        SessionFile.objects.filter(session_id=session_id, path__in=chain).values_list("path", "is_directory")
    )
    for directory, is_directory in existing.items():
        if not is_directory:
            raise Conflict(f"{directory} is a file, not a directory")
    return [directory for directory in reversed(chain) if directory not in existing]


def decode_content(content, encoding: str) -> bytes:
    if content is None:
        return b""
    if encoding == "base64":
        try:
            return base64.b64decode(content, validate=True)
        except (ValueError, TypeError):
            raise ValidationError("Invalid content", details={"content": ["Not valid base64."]}) from None
    if encoding != "text":
        raise ValidationError("Invalid encoding", details={"encoding": ["Must be text or base64."]})
    if not isinstance(content, str):
        raise ValidationError("Invalid content", details={"content": ["Must be a string."]})
    return content.encode("utf-8")


def _check_quota(session_id, path: str, data: bytes, new_directories: list[str]) -> None:
    """Would writing `data` at `path` (and creating `new_directories`) stay within the session's limits?"""
    if len(data) > settings.SESSION_FILE_MAX_BYTES:
        raise PayloadTooLarge(f"A file is at most {settings.SESSION_FILE_MAX_BYTES} bytes")
    added = len(data) + sum(len(p.encode()) for p in [path, *new_directories])
    _check_room(session_id, entries=1 + len(new_directories), added=added, replacing=path)


def _check_room(session_id, *, entries: int, added: int, replacing: str | None = None) -> None:
    """Would `entries` more entries and `added` more bytes (content and paths; the entry at `replacing` left out,
    as it is rewritten) stay within the session's limits?"""
    used = (
        SessionFile.objects.filter(session_id=session_id)
        .exclude(path=replacing)
        .aggregate(entries=Count("id"), content=Sum("size"), paths=Sum(OctetLength(F("path"))))
    )
    if used["entries"] + entries > settings.SESSION_FS_MAX_FILES:
        raise PayloadTooLarge(f"A session has at most {settings.SESSION_FS_MAX_FILES} files and directories")
    if (used["content"] or 0) + (used["paths"] or 0) + added > settings.SESSION_FS_MAX_BYTES:
        raise PayloadTooLarge(
            f"The session's files are at most {settings.SESSION_FS_MAX_BYTES} bytes in all (content and paths)"
        )


def create(
    session_id,
    path: str,
    *,
    content=None,
    encoding: str = "text",
    is_directory: bool = False,
    is_readonly: bool = False,
) -> SessionFile:
    path = normalize(path)
    if path == "/":
        raise Conflict("The root directory already exists")
    data = b"" if is_directory else decode_content(content, encoding)
    with transaction.atomic():
        _lock_session(session_id)
        if _get(session_id, path):
            raise Conflict(f"{path} already exists")
        return _insert(session_id, path, data, is_directory=is_directory, is_readonly=is_readonly and not is_directory)


def _insert(session_id, path: str, data: bytes, *, is_directory: bool, is_readonly: bool) -> SessionFile:
    """A new entry at the free `path` with its missing parents, within the quota (the session is locked)."""
    parents = _missing_parents(session_id, path)
    _check_quota(session_id, path, data, parents)
    SessionFile.objects.bulk_create(
        [SessionFile(session_id=session_id, path=directory, is_directory=True) for directory in parents]
    )
    try:
        return SessionFile.objects.create(
            session_id=session_id,
            path=path,
            is_directory=is_directory,
            is_readonly=is_readonly,
            content=data,
            size=len(data),
        )
    except IntegrityError:
        raise Conflict(f"{path} already exists") from None


def update(
    session_id, path: str, *, content=None, encoding: str = "text", is_readonly: bool | None = None
) -> SessionFile:
    """New content, or a new read-only flag, or both. A read-only file's content is not written (403), unless
    the same change makes it writable."""
    path = normalize(path)
    if content is None and is_readonly is None:
        raise ValidationError("Nothing to change", details={"content": ["Give content or is_readonly."]})
    data = None if content is None else decode_content(content, encoding)
    with transaction.atomic():
        _lock_session(session_id)
        existing = _get(session_id, path)
        if existing is None:
            raise NotFound(f"{path} does not exist")
        if existing.is_directory:
            raise Conflict(f"{path} is a directory")
        fields = ["updated_at"]
        # The stored flag decides: a change that makes a read-only file writable may also write it, and one that
        # makes a writable file read-only writes it first.
        was_readonly = existing.is_readonly
        if is_readonly is not None:
            existing.is_readonly = is_readonly
            fields.append("is_readonly")
        if data is not None:
            if was_readonly and is_readonly is not False:
                raise Forbidden(f"{path} is read-only")
            _check_quota(session_id, path, data, [])
            existing.content, existing.size = data, len(data)
            fields += ["content", "size"]
        existing.save(update_fields=fields)
        return existing


def write(session_id, path: str, *, content: str, encoding: str = "text") -> tuple[SessionFile, bool]:
    """Create or replace a file (the tools' write). Returns (file, created)."""
    try:
        return update(session_id, path, content=content, encoding=encoding), False
    except NotFound:
        return create(session_id, path, content=content, encoding=encoding), True


def get(session_id, path: str) -> SessionFile | None:
    """None for the root (which always exists and is a directory)."""
    path = normalize(path)
    if path == "/":
        return None
    found = _get(session_id, path)
    if found is None:
        raise NotFound(f"{path} does not exist")
    return found


def children(
    session_id, path: str, *, limit: int, offset: int = 0, recursive: bool = False
) -> tuple[list[SessionFile], int]:
    """One page of a directory's entries (or, `recursive`, of everything below it), by path, and how many
    there are in all."""
    path = normalize(path)
    if path != "/":
        directory = _get(session_id, path)
        if directory is None:
            raise NotFound(f"{path} does not exist")
        if not directory.is_directory:
            raise Conflict(f"{path} is not a directory")
    rows = (_below if recursive else _directly_below)(session_id, path).defer("content").order_by("path")
    return list(rows[offset : offset + limit]), rows.count()


def delete(session_id, path: str, *, recursive: bool = False) -> int:
    path = normalize(path)
    if path == "/":
        raise Conflict("The root directory cannot be deleted")
    with transaction.atomic():
        _lock_session(session_id)
        target = _get(session_id, path)
        if target is None:
            raise NotFound(f"{path} does not exist")
        below = _below(session_id, path)
        if target.is_directory and below.exists() and not recursive:
            raise ValidationError(
                f"{path} is not empty", details={"recursive": ["Give recursive=true to delete a non-empty directory."]}
            )
        count = below.count() + 1
        SessionFile.objects.filter(Q(pk=target.pk) | Q(pk__in=below.values("pk"))).delete()
        return count


def _source_and_destination(session_id, src: str, dst: str) -> tuple[SessionFile, str]:
    """The entry at `src` and the free, normalised `dst` (the session is locked)."""
    src, dst = normalize(src), normalize(dst)
    if "/" in (src, dst):
        raise ValidationError(
            "Invalid path", details={"path": ["The root directory cannot be copied, moved or replaced."]}
        )
    source = _get(session_id, src)
    if source is None:
        raise NotFound(f"{src} does not exist")
    if _get(session_id, dst):
        raise Conflict(f"{dst} already exists")
    return source, dst


def copy(session_id, src: str, dst: str) -> SessionFile:
    """A copy of the file `src` at `dst` (parents created; a directory cannot be copied). The copy is writable."""
    with transaction.atomic():
        _lock_session(session_id)
        source, dst = _source_and_destination(session_id, src, dst)
        if source.is_directory:
            raise ValidationError("Cannot copy a directory", details={"src": [f"{source.path} is a directory."]})
        return _insert(session_id, dst, bytes(source.content), is_directory=False, is_readonly=False)


def move(session_id, src: str, dst: str) -> SessionFile:
    """Move (rename) a file or a directory with everything below it to `dst` (parents created)."""
    with transaction.atomic():
        _lock_session(session_id)
        source, dst = _source_and_destination(session_id, src, dst)
        if dst.startswith(source.path + "/"):
            raise ValidationError("Invalid path", details={"dst": ["A directory cannot move into itself."]})
        parents = _missing_parents(session_id, dst)
        moved = list(_below(session_id, source.path).only("pk", "path"))
        # The quota counts paths too: every moved entry's path changes length, and new parents are entries.
        grown = (len(dst.encode()) - len(source.path.encode())) * (1 + len(moved))
        _check_room(session_id, entries=len(parents), added=grown + sum(len(p.encode()) for p in parents))
        SessionFile.objects.bulk_create(
            [SessionFile(session_id=session_id, path=directory, is_directory=True) for directory in parents]
        )
        for entry in moved:
            entry.path = dst + entry.path[len(source.path) :]
        SessionFile.objects.bulk_update(moved, ["path"], batch_size=500)
        source.path = dst
        source.save(update_fields=["path", "updated_at"])
        return source


def compile_pattern(pattern):
    """An RE2 regular expression: matching takes time linear in the text, whatever the pattern (Python's
    `re` backtracks: `^(a|a)*$` on 28 bytes held the GIL for seconds), and compiling is bounded in memory
    (the `regex` package expands counted repeats: `(?:a{1000}){1000}` took 273 MB). RE2 has no
    backreferences or lookaround; such a pattern is a validation error the caller sees."""
    if not isinstance(pattern, str) or not pattern:
        raise ValidationError("Invalid pattern", details={"pattern": ["Must be a non-empty string."]})
    if len(pattern) > MAX_PATTERN:
        raise ValidationError("Invalid pattern", details={"pattern": [f"At most {MAX_PATTERN} characters."]})
    options = re2.Options()
    options.log_errors = False  # RE2 would print every bad pattern to stderr
    options.max_mem = 8 << 20  # bytes for the compiled program (RE2's default, stated)
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        reason = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise ValidationError("Invalid pattern", details={"pattern": [reason]}) from None


def grep(session_id, pattern: str, path: str = "/", *, max_matches: int = 200) -> list[dict]:
    """Lines that match `pattern` in the files at or below `path`, by path then line: `{path, line_number,
    line}` (the line cut at 500 characters). One file's content is in memory at a time: the paths are read
    first, then each file's content alone, so a search of a session's 100 MiB holds one file of it."""
    regex = compile_pattern(pattern)
    path = normalize(path)
    files = SessionFile.objects.filter(session_id=session_id, is_directory=False).filter(
        Q(path=path) | Q(pk__in=_below(session_id, path).values("pk"))
    )
    deadline = time.monotonic() + settings.SESSION_FS_GREP_SECONDS
    matches = []
    for pk, file_path in files.order_by("path").values_list("pk", "path"):
        content = SessionFile.objects.filter(pk=pk).values_list("content", flat=True).first()
        if content is None:
            continue  # deleted since the paths were read
        text = bytes(content).decode("utf-8", errors="replace")
        del content
        for number, line in enumerate(text.splitlines(), start=1):
            if time.monotonic() > deadline:
                raise AppError(
                    f"grep stopped after {settings.SESSION_FS_GREP_SECONDS:g} s; search a smaller path or a "
                    "simpler pattern"
                )
            if regex.search(line):
                matches.append({"path": file_path, "line_number": number, "line": line[:500]})
                if len(matches) >= max_matches:
                    return matches
    return matches


def describe(f: SessionFile | None, *, session_id=None, with_content: bool = False) -> dict:
    """A file or directory as the API and the tools show it; `f` None is the root of `session_id`."""
    if f is None:
        return {
            "id": None,
            "session_id": str(session_id) if session_id else None,
            "path": "/",
            "name": "",
            "is_directory": True,
            "is_readonly": False,
            "size_bytes": 0,
            "created_at": None,
            "updated_at": None,
        }
    info = {
        "id": str(f.pk),
        "session_id": str(f.session_id),
        "path": f.path,
        "name": posixpath.basename(f.path),
        "is_directory": f.is_directory,
        "is_readonly": f.is_readonly,
        "size_bytes": f.size,
        "created_at": rfc3339(f.created_at),
        "updated_at": rfc3339(f.updated_at),
    }
    if with_content and not f.is_directory:
        raw = bytes(f.content)
        try:
            info["content"], info["encoding"] = raw.decode("utf-8"), "text"
        except UnicodeDecodeError:
            info["content"], info["encoding"] = base64.b64encode(raw).decode(), "base64"
    return info
