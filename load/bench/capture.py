"""Round trips of one real request, and the SQL it ran, recorded on the real clients.

A recording wrapper around asyncpg's Connection (every statement, BEGIN and COMMIT included)
and redis-py's client (one command, one pipeline or one script call each), the approach of
tests/test_round_trips.py. Each recorded PostgreSQL statement keeps its SQL text, its arguments
and the repository function it came from (the first frame under ``service/`` that is not the
database plumbing), so the pgbench reference of a path is the SQL the service itself executed,
never a copy.

``pgbench_script`` turns the recorded statements into a pgbench script: every argument becomes
a literal cast to the parameter's type (asked from PostgreSQL), except the values that must be
fresh in every transaction (the member, the request's unique keys), which become pgbench
variables, so every pgbench transaction is a real write of a new member like the HTTP side's.
"""

from __future__ import annotations

import contextvars
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec
import redis.asyncio.client as redis_client


@dataclass
class Statement:
    sql: str
    args: tuple[Any, ...]
    source: str  # module.function of the repository (or core) code that ran it
    returned: dict[str, Any] | None = None  # the (last) row it returned


@dataclass
class Recording:
    pg: list[Statement] = field(default_factory=list)
    redis: list[str] = field(default_factory=list)

    @property
    def round_trips(self) -> tuple[int, int]:
        return len(self.pg), len(self.redis)


_current: contextvars.ContextVar[Recording | None] = contextvars.ContextVar("rec", default=None)
_PLUMBING = ("asyncpg", "service/core/db.py", "load/bench/")


def _source() -> str:
    """module.function of the first service frame that is not the database plumbing."""
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename.replace("\\", "/")
        if "/service/" in path and not any(p in path for p in _PLUMBING):
            module = path[path.rindex("/service/") + 1 :].removesuffix(".py").replace("/", ".")
            return f"{module}.{frame.f_code.co_name}"
        frame = frame.f_back  # type: ignore[assignment]
    return "?"


@contextmanager
def recording() -> Iterator[Recording]:
    """Records every PostgreSQL statement and Redis round trip made in this context (this
    task and the tasks it starts). Patches the client classes for the block's duration."""
    originals: dict[str, Any] = {}

    def wrap(name: str) -> Any:
        original = getattr(asyncpg.Connection, name)
        originals[name] = original

        async def recorded(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            rec = _current.get()
            if rec is None:
                return await original(self, query, *args, **kwargs)
            st = Statement(str(query), args, _source())
            rec.pg.append(st)
            result = await original(self, query, *args, **kwargs)
            if name == "fetchrow" and result is not None:
                st.returned = dict(result)
            elif name == "fetch" and result:
                st.returned = dict(result[-1])
            elif name == "fetchval":
                st.returned = {"?": result}
            return result

        return recorded

    for name in ("execute", "fetch", "fetchrow", "fetchval", "executemany"):
        setattr(asyncpg.Connection, name, wrap(name))
    command = redis_client.Redis.execute_command
    pipeline_execute = redis_client.Pipeline.execute

    async def recorded_command(self: Any, *args: Any, **kwargs: Any) -> Any:
        rec = _current.get()
        if rec is not None and not isinstance(self, redis_client.Pipeline):
            rec.redis.append(str(args[0]))
        return await command(self, *args, **kwargs)

    async def recorded_pipeline(self: Any, *args: Any, **kwargs: Any) -> Any:
        rec = _current.get()
        if rec is not None:
            rec.redis.append(f"pipeline[{len(self.command_stack)}]")
        return await pipeline_execute(self, *args, **kwargs)

    redis_client.Redis.execute_command = recorded_command  # type: ignore[method-assign]
    redis_client.Pipeline.execute = recorded_pipeline  # type: ignore[method-assign]
    rec = Recording()
    token = _current.set(rec)
    try:
        yield rec
    finally:
        _current.reset(token)
        for name, original in originals.items():
            setattr(asyncpg.Connection, name, original)
        redis_client.Redis.execute_command = command  # type: ignore[method-assign]
        redis_client.Pipeline.execute = pipeline_execute  # type: ignore[method-assign]


# ----------------------------------------------------------------------------- pgbench script

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_ID_TYPES = ("int8", "_int8", "int8[]")


@dataclass
class Fresh:
    """Values of the recorded request that pgbench makes new in every transaction.

    ``member``: the member's id (as a whole number wherever it appears: an argument, an array
    element, a token of a string such as a ledger key) becomes ``:m``, a new member id in every
    transaction. With ``pool`` (the ids lo..hi of members ``p1``..``pN``, ``pool_prefix``),
    ``:m`` is one of them instead, ``:x`` its number and ``external`` (the recorded member's
    externalId, for paths that find the member by it) becomes ``p`` || ``:x``: at random, or
    each used once when ``sequential`` (client c's i-th transaction takes number 1 + c +
    clients x (i - 1)), e.g. for members holding exactly the points one paid spin costs;
    every string of ``keys`` (an event id) becomes ``:k``; every UUID becomes a UUID made
    from ``:k`` (distinct ones stay distinct)."""

    member: int
    keys: tuple[str, ...] = ()
    pool: tuple[int, int] | None = None
    pool_prefix: str = "p"
    sequential: bool = False
    external: str | None = None


@dataclass
class _Render:
    fresh: Fresh
    returned: dict[int, str] = field(default_factory=dict)  # id -> pgbench variable
    uuids: dict[str, int] = field(default_factory=dict)

    def uuid(self, value: str) -> str:
        n = self.uuids.setdefault(value.lower(), len(self.uuids))
        return f"CAST(CAST(md5(CAST(:k AS text) || '-{n}') AS uuid) AS text)"

    def text(self, value: Any, id_typed: bool = False) -> str:
        """A SQL expression of type text giving ``value`` in PostgreSQL's input syntax."""
        if isinstance(value, bool):
            return "'true'" if value else "'false'"
        if isinstance(value, int):
            if value == self.fresh.member:
                return "CAST(:m AS text)"
            if id_typed and value in self.returned:
                return f"CAST(:{self.returned[value]} AS text)"
            return f"'{value}'"
        if isinstance(value, float | Decimal):
            return f"'{value}'"
        if isinstance(value, datetime | date | time):
            return _quote(value.isoformat())
        if isinstance(value, timedelta):
            return f"'{value.total_seconds()} seconds'"
        if isinstance(value, uuid.UUID):
            return self.uuid(str(value))
        if isinstance(value, bytes | bytearray | memoryview):
            return f"'\\x{bytes(value).hex()}'"
        if isinstance(value, str):
            return self.string(value)
        return self.string(_json(value))

    def string(self, s: str) -> str:
        patterns = [re.escape(k) for k in self.fresh.keys if k] + [_UUID.pattern]
        patterns.append(rf"(?<!\d){self.fresh.member}(?!\d)")
        ext = self.fresh.external if self.fresh.pool else None
        if ext:
            patterns.insert(0, rf"(?<![\w-]){re.escape(ext)}(?![\w-])")
        parts: list[str] = []
        pos = 0
        for m in re.finditer("|".join(patterns), s, re.I):
            if m.start() > pos:
                parts.append(_quote(s[pos : m.start()]))
            if ext and m.group(0) == ext:
                parts.append(f"{_quote(self.fresh.pool_prefix)} || CAST(:x AS text)")
            elif m.group(0) == str(self.fresh.member):
                parts.append("CAST(:m AS text)")
            elif _UUID.fullmatch(m.group(0)):
                parts.append(self.uuid(m.group(0)))
            else:
                parts.append("CAST(:k AS text)")
            pos = m.end()
        if pos < len(s) or not parts:
            parts.append(_quote(s[pos:]))
        return " || ".join(parts)

    def literal(self, value: Any, type_name: str, is_array: bool) -> str:
        if value is None:
            return f"CAST(NULL AS {type_name})"
        ids = type_name in _ID_TYPES
        if is_array and isinstance(value, list | tuple):
            elems = ", ".join("NULL" if v is None else self.text(v, ids) for v in value)
            return f"CAST(ARRAY[{elems}]::text[] AS {type_name})"
        if type_name in ("json", "jsonb") and not isinstance(value, str):
            value = _json(value)
        return f"CAST({self.text(value, ids)} AS {type_name})"


def _json(value: Any) -> str:
    """JSON as the service's connections encode it (msgspec, service.core.db.init_connection):
    Structs, dataclasses and datetimes included."""
    return msgspec.json.encode(value).decode()


def _quote(text: str) -> str:
    """An E'' literal with no colon in it (pgbench would read ``:word`` as a variable)."""
    body = text.replace("\\", "\\\\").replace("'", "\\'").replace(":", "\\x3a")
    return f"E'{body}'"


async def pgbench_script(
    conn: asyncpg.Connection, statements: list[Statement], fresh: Fresh
) -> str:
    """The recorded statements as one pgbench transaction script (prepared protocol).

    An id a statement returned (an ``id`` or ``*_id`` column) and a later statement passes back
    (a lot to debit, the draw of an award) is kept in a variable (``\\aset``), so each
    transaction chains its own rows like the service does."""
    if fresh.pool and fresh.sequential:  # -D i=0 -D nclients=N (kit.pgbench)
        lo = fresh.pool[0]  # the pool must hold every transaction's member
        lines = ["\\set i :i + 1", "\\set x 1 + :client_id + :nclients * (:i - 1)"]
        lines.append(f"\\set m {lo - 1} + :x")
    elif fresh.pool:
        lo, hi = fresh.pool
        lines = [f"\\set x random(1, {hi - lo + 1})", f"\\set m {lo - 1} + :x"]
    else:
        lines = ["\\set m random(1000000000000, 9000000000000)"]
    lines.append("\\set k random(1, 9000000000000000)")
    r = _Render(fresh)
    for i, st in enumerate(statements):
        stmt = await conn.prepare(st.sql)
        params = stmt.get_parameters() if st.args else ()
        exprs = [
            r.literal(v, p.name, p.kind == "array") for v, p in zip(st.args, params, strict=True)
        ]
        sql = re.sub(r"\$(\d+)", lambda m, e=exprs: e[int(m.group(1)) - 1], st.sql)
        sql = " ".join(sql.split()).rstrip(";")
        stray = re.findall(r"(?<![:\w]):(?!m\b|k\b|x\b|r\d+_)[A-Za-z_]\w*", sql)
        if stray:
            raise RuntimeError(f"pgbench would read {stray} as variables in: {sql[:200]}")
        returned = dict(st.returned or {})
        if "?" in returned:  # fetchval: the first column's value
            attrs = stmt.get_attributes()
            returned = {attrs[0].name: returned["?"]} if attrs else {}
        ids = {
            col: v
            for col, v in returned.items()
            if (col == "id" or col.endswith("_id"))
            and isinstance(v, int)
            and not isinstance(v, bool)
            and v != fresh.member
        }
        if ids:
            for col, v in ids.items():
                r.returned[v] = f"r{i}_{col}"
            lines.append(f"{sql} \\aset r{i}_")
        else:
            lines.append(sql + ";")
    return "\n".join(lines) + "\n"
