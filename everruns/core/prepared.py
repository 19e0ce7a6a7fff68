"""The written-out SQL as server-side prepared statements (PostgreSQL): each statement is parsed and planned once
per connection (`PREPARE`), then sent as `EXECUTE name(params)`.

Planning is most of what PostgreSQL spends on our hot statements: the event append with its webhook outbox (a
three-part data-modifying CTE) plans in ~0.15 ms and runs in ~0.05 ms. Prepared, a turn's ~40 statements cost
the database a third less CPU (docs/performance.md). The ORM's own queries are left alone: their shapes are
unbounded and their parameters' types are not ours to vouch for.

- Per raw DB-API connection (a reconnect starts afresh), at most `MAX_PER_CONNECTION` statements; beyond that,
  and for what cannot be prepared, the statement is sent as written.
- A `PREPARE` inside a transaction runs under a savepoint, so one that fails (a parameter whose type PostgreSQL
  cannot infer) leaves the transaction as it was, and the statement is sent as written from then on.
- With the query log on (DEBUG, or a test that captures queries) statements are sent as written, so the log shows
  them; the counts are the same either way (the `PREPARE` is not a query of the caller's).
- `DB_PREPARED_STATEMENTS=false` sends every statement as written: behind a pooler that gives one client's statements
  to different server connections (PgBouncer's transaction pooling), a statement prepared on one is unknown on the
  next.
"""

import itertools
import threading
import weakref

import psycopg2
from django.conf import settings
from psycopg2.extensions import TRANSACTION_STATUS_INERROR

MAX_PER_CONNECTION = 256
UNPREPARABLE = ""  # a statement's entry once its PREPARE failed

_statements: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # raw connection -> {sql: name}
_lock = threading.Lock()
_names = itertools.count(1)


def numbered(sql: str) -> str | None:
    """`sql` with its `%s` placeholders as `$1`, `$2`, ... and `%%` as `%`; None if it has another `%` directive
    (named parameters) that a prepared statement cannot take."""
    out, n, i = [], 0, 0
    while True:
        j = sql.find("%", i)
        if j < 0:
            out.append(sql[i:])
            return "".join(out)
        out.append(sql[i:j])
        following = sql[j + 1 : j + 2]
        if following == "s":
            n += 1
            out.append(f"${n}")
        elif following == "%":
            out.append("%")
        else:
            return None
        i = j + 2


def execute(cursor, sql: str, params) -> None:
    """`cursor.execute(sql, params)` (a Django cursor, `params` a list), prepared where it can be."""
    db = cursor.db
    raw = db.connection
    if (
        db.vendor != "postgresql"
        or not settings.DB_PREPARED_STATEMENTS
        or db.queries_logged
        or raw is None
        or getattr(cursor.cursor, "name", None)
    ):
        cursor.execute(sql, params)
        return
    known = _statements.get(raw)
    if known is None:
        with _lock:
            known = _statements.setdefault(raw, {})
    name = known.get(sql)
    if name is None:
        name = _prepare(raw, sql, known)
    if not name:
        cursor.execute(sql, params)
        return
    marks = ", ".join(["%s"] * len(params))
    cursor.execute(f"EXECUTE {name}({marks})" if params else f"EXECUTE {name}", params)


def _prepare(raw, sql: str, known: dict) -> str:
    """PREPARE `sql` on `raw`; its name, or UNPREPARABLE."""
    body = numbered(sql)
    if body is None:
        known[sql] = UNPREPARABLE
        return UNPREPARABLE
    if len(known) >= MAX_PER_CONNECTION or raw.info.transaction_status == TRANSACTION_STATUS_INERROR:
        return UNPREPARABLE  # not recorded: a later call may prepare it
    name = f"evr_{next(_names)}"
    with raw.cursor() as cursor:
        if raw.autocommit:
            try:
                cursor.execute(f"PREPARE {name} AS {body}")
            except psycopg2.Error:
                known[sql] = UNPREPARABLE
                return UNPREPARABLE
        else:
            cursor.execute("SAVEPOINT evr_prepare")
            try:
                cursor.execute(f"PREPARE {name} AS {body}")
            except psycopg2.Error:
                cursor.execute("ROLLBACK TO SAVEPOINT evr_prepare")
                known[sql] = UNPREPARABLE
                return UNPREPARABLE
            finally:
                cursor.execute("RELEASE SAVEPOINT evr_prepare")
    known[sql] = name
    return name
