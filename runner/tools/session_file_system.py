"""Tools over the session's own file system (sessions.fs.files)."""

from everruns.core.errors import AppError
from runner.tools.base import Capability, Tool, ToolError, obj
from sessions.fs import files

PATH = {"type": "string", "description": "Absolute or relative path inside the session, e.g. /notes/todo.md"}
LIST_PAGE = 200  # entries one list_directory call returns at most; `offset` pages on


def _wrap(func):
    def call(ctx, args):
        try:
            return func(ctx.session_id, args)
        except AppError as exc:
            detail = "; ".join(m for ms in exc.details.values() for m in ms) if exc.details else ""
            raise ToolError(f"{exc.message}{': ' + detail if detail else ''}") from None
        except KeyError as missing:
            raise ToolError(f"missing argument {missing}") from None

    return call


def _read(session_id, args):
    found = files.get(session_id, args["path"])
    if found is None or found.is_directory:
        raise ToolError(f"{args['path']} is a directory")
    return files.describe(found, with_content=True)


def _write(session_id, args):
    content = args["content"]
    if not isinstance(content, str):
        raise ToolError("content must be a string")
    written, created = files.write(session_id, args["path"], content=content)
    return {"path": written.path, "size_bytes": written.size, "created": created}


def _whole_number(args, name, default, low, high):
    value = args.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ToolError(f"{name} must be an integer from {low} to {high}")
    return value


def _list(session_id, args):
    path = args.get("path") or "/"
    limit = _whole_number(args, "limit", LIST_PAGE, 1, LIST_PAGE)
    offset = _whole_number(args, "offset", 0, 0, 10**9)
    entries, total = files.children(session_id, path, limit=limit, offset=offset)
    return {
        "path": files.normalize(path),
        "entries": [files.describe(f) for f in entries],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


def _grep(session_id, args):
    return {"matches": files.grep(session_id, args["pattern"], args.get("path") or "/")}


def _delete(session_id, args):
    return {"deleted": files.delete(session_id, args["path"], recursive=bool(args.get("recursive")))}


def _stat(session_id, args):
    return files.describe(files.get(session_id, args["path"]), session_id=session_id)


def _copy(session_id, args):
    return files.describe(files.copy(session_id, args["src"], args["dst"]))


def _move(session_id, args):
    return files.describe(files.move(session_id, args["src"], args["dst"]))


CAPABILITY = Capability(
    id="session_file_system",
    name="Session file system",
    description="Read, write, list, search, copy, move and delete files in the session's own file system.",
    category="files",
    system_prompt="You have a private file system for this session. Use it to keep notes and work products.",
    tools=[
        Tool("read_file", "Read a file.", obj({"path": PATH}, ["path"]), _wrap(_read)),
        Tool(
            "write_file",
            "Create or replace a file; parent directories are created.",
            obj({"path": PATH, "content": {"type": "string"}}, ["path", "content"]),
            _wrap(_write),
        ),
        Tool(
            "list_directory",
            f"List a directory (default: the root), at most {LIST_PAGE} entries a call: `total` counts them all, "
            "`offset` pages on.",
            obj(
                {
                    "path": PATH,
                    "limit": {"type": "integer", "minimum": 1, "maximum": LIST_PAGE},
                    "offset": {"type": "integer", "minimum": 0},
                }
            ),
            _wrap(_list),
        ),
        Tool(
            "grep_files",
            "Search files for a regular expression (RE2 syntax: no backreferences or lookaround); returns "
            "matching lines.",
            obj({"pattern": {"type": "string"}, "path": PATH}, ["pattern"]),
            _wrap(_grep),
        ),
        Tool(
            "delete_file",
            "Delete a file or directory (recursive for a non-empty directory).",
            obj({"path": PATH, "recursive": {"type": "boolean"}}, ["path"]),
            _wrap(_delete),
            idempotent=False,  # a second run finds nothing to delete and reports an error
        ),
        Tool("stat_file", "Size, type and times of a file or directory.", obj({"path": PATH}, ["path"]), _wrap(_stat)),
        Tool(
            "copy_file",
            "Copy a file to a new path; parent directories are created.",
            obj({"src": PATH, "dst": PATH}, ["src", "dst"]),
            _wrap(_copy),
            idempotent=False,  # a second run finds the copy there and reports an error
        ),
        Tool(
            "move_file",
            "Move (rename) a file, or a directory with everything in it, to a new path.",
            obj({"src": PATH, "dst": PATH}, ["src", "dst"]),
            _wrap(_move),
            idempotent=False,  # a second run finds nothing at src and reports an error
        ),
    ],
)
