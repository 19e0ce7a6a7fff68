"""The session file system: per-session files and directories stored in the database.

Used by the `session_file_system` tools and by the `.../fs/{path}` API. Every path is normalised
to an absolute form ("/a/b.txt") and can never leave the session's root.
"""

import base64
import posixpath
import re

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum

from everruns.dates import rfc3339
from everruns.errors import Conflict, NotFound, PayloadTooLarge, ValidationError
from sessions.models import Session, SessionFile

MAX_PATH = 1024
MAX_NAME = 255


def normalize(path: str) -> str:
    if not isinstance(path, str):
        raise ValidationError("Invalid path", details={"path": ["Must be a string."]})
    if "\x00" in path:
        raise ValidationError("Invalid path", details={"path": ["NUL bytes are not allowed."]})
    if len(path) > MAX_PATH:
        raise ValidationError("Invalid path", details={"path": [f"At most {MAX_PATH} characters."]})
    if "\\" in path:
        raise ValidationError("Invalid path", details={"path": ["Backslashes are not allowed."]})
    parts = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise ValidationError("Invalid path", details={"path": ["'..' is not allowed."]})
        if len(part) > MAX_NAME:
            raise ValidationError("Invalid path", details={"path": [f"A name is at most {MAX_NAME} characters."]})
        parts.append(part)
    return "/" + "/".join(parts)


def _parent(path: str) -> str:
    return posixpath.dirname(path) or "/"


def _get(session_id, path: str) -> SessionFile | None:
    return SessionFile.objects.filter(session_id=session_id, path=path).first()


def _lock_session(session_id) -> None:
    if not Session.objects.select_for_update().filter(pk=session_id).exists():
        raise NotFound("Session not found")


def _ensure_parents(session_id, path: str) -> None:
    parent = _parent(path)
    chain = []
    while parent != "/":
        chain.append(parent)
        parent = _parent(parent)
    for directory in reversed(chain):
        existing = _get(session_id, directory)
        if existing is None:
            SessionFile.objects.create(session_id=session_id, path=directory, is_directory=True)
        elif not existing.is_directory:
            raise Conflict(f"{directory} is a file, not a directory")


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


def _check_size(session_id, path: str, data: bytes) -> None:
    if len(data) > settings.SESSION_FILE_MAX_BYTES:
        raise PayloadTooLarge(f"A file is at most {settings.SESSION_FILE_MAX_BYTES} bytes")
    used = (
        SessionFile.objects.filter(session_id=session_id).exclude(path=path).aggregate(total=Sum("size"))["total"] or 0
    )
    if used + len(data) > settings.SESSION_FS_MAX_BYTES:
        raise PayloadTooLarge(f"The session's files are at most {settings.SESSION_FS_MAX_BYTES} bytes in all")


def create(session_id, path: str, *, content=None, encoding: str = "text", is_directory: bool = False) -> SessionFile:
    path = normalize(path)
    if path == "/":
        raise Conflict("The root directory already exists")
    data = b"" if is_directory else decode_content(content, encoding)
    with transaction.atomic():
        _lock_session(session_id)
        if _get(session_id, path):
            raise Conflict(f"{path} already exists")
        _check_size(session_id, path, data)
        _ensure_parents(session_id, path)
        try:
            return SessionFile.objects.create(
                session_id=session_id, path=path, is_directory=is_directory, content=data, size=len(data)
            )
        except IntegrityError:
            raise Conflict(f"{path} already exists") from None


def update(session_id, path: str, *, content, encoding: str = "text") -> SessionFile:
    path = normalize(path)
    data = decode_content(content, encoding)
    with transaction.atomic():
        _lock_session(session_id)
        existing = _get(session_id, path)
        if existing is None:
            raise NotFound(f"{path} does not exist")
        if existing.is_directory:
            raise Conflict(f"{path} is a directory")
        _check_size(session_id, path, data)
        existing.content, existing.size = data, len(data)
        existing.save(update_fields=["content", "size", "updated_at"])
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


def children(session_id, path: str) -> list[SessionFile]:
    path = normalize(path)
    if path != "/":
        directory = _get(session_id, path)
        if directory is None:
            raise NotFound(f"{path} does not exist")
        if not directory.is_directory:
            raise Conflict(f"{path} is not a directory")
    prefix = "/" if path == "/" else path + "/"
    rows = SessionFile.objects.filter(session_id=session_id, path__startswith=prefix).defer("content")
    return [f for f in rows if "/" not in f.path[len(prefix) :]]


def delete(session_id, path: str, *, recursive: bool = False) -> int:
    path = normalize(path)
    if path == "/":
        raise Conflict("The root directory cannot be deleted")
    with transaction.atomic():
        _lock_session(session_id)
        target = _get(session_id, path)
        if target is None:
            raise NotFound(f"{path} does not exist")
        below = SessionFile.objects.filter(session_id=session_id, path__startswith=path + "/")
        if target.is_directory and below.exists() and not recursive:
            raise Conflict(f"{path} is not empty; use recursive")
        count = below.count() + 1
        SessionFile.objects.filter(Q(pk=target.pk) | Q(pk__in=below.values("pk"))).delete()
        return count


def grep(session_id, pattern: str, path: str = "/", *, max_matches: int = 200) -> list[dict]:
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ValidationError("Invalid pattern", details={"pattern": [str(exc)]}) from None
    path = normalize(path)
    prefix = "/" if path == "/" else path + "/"
    files = SessionFile.objects.filter(session_id=session_id, is_directory=False).filter(
        Q(path=path) | Q(path__startswith=prefix)
    )
    matches = []
    for f in files.order_by("path"):
        text = bytes(f.content).decode("utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), start=1):
            if regex.search(line):
                matches.append({"path": f.path, "line": number, "text": line[:500]})
                if len(matches) >= max_matches:
                    return matches
    return matches


def describe(f: SessionFile | None, *, with_content: bool = False) -> dict:
    if f is None:
        return {"path": "/", "name": "", "is_directory": True, "size": 0, "created_at": None, "updated_at": None}
    info = {
        "path": f.path,
        "name": posixpath.basename(f.path),
        "is_directory": f.is_directory,
        "size": f.size,
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
