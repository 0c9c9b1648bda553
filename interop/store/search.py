"""FHIR search over the index tables: parameters parsed into SQL (SQLAlchemy Core, same on SQLite and PostgreSQL).

FHIR R4 §3.1.1 (search): one parameter's comma-separated values are ORed, repeated parameters ANDed. One
selective condition drives the query from its lookup index (``rid IN (...)``); the others are correlated
``EXISTS`` probes on the ``ix_*_rid`` indexes. Pages are keyset pages (``_cursor``): no OFFSET, so a deep page
costs what the first one does. Values are bound parameters, and the statement built for a search shape is
cached, so a repeated search costs its execution, not its construction.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    bindparam,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
)
from sqlalchemy.sql.expression import BindParameter, FromClause

from interop.store.base import InvalidRequest, SearchParams, SearchResult, Stored
from interop.store.indexing import MAX_INSTANT, MIN_INSTANT, date_range, normalize, parse_reference
from interop.store.schema import INDEX_TABLES, idx_reference, resource
from interop.store.searchparams import SearchParam, common_params, params_for, served_types

_RESULT_PARAMS = frozenset(
    {
        "_count",
        "_sort",
        "_cursor",
        "_total",
        "_summary",
        "_elements",
        "_include",
        "_revinclude",
        "_format",
        "_pretty",
    }
)
"""Parameters that shape the result rather than select resources."""
_PREFIX = re.compile(r"^(eq|ne|lt|gt|le|ge|sa|eb|ap)?(.*)$", re.S)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_TOP = "\U0010ffff"  # sorts after every other character (UTF-8 byte order and code point order agree)

Res = FromClause
_TARGET = resource.alias("target")
"""The resource table as the target of a chain (one level deep, so one alias serves every chain)."""
_PROBE_CAP = 1000
"""A lookup with fewer rows than this drives a default-order query; above it, scanning rids in order and
probing each one finds a page sooner (SQLite has no statistics to decide this itself)."""
Predicate = Callable[[Res], ColumnElement[bool]]


# ------------------------------------------------------------------------------------ value syntax
def _split(value: str, sep: str) -> list[str]:
    """Split on ``sep`` not escaped by a backslash (FHIR §3.1.1.4.7), then unescape ``\\,``, ``\\|``, ``\\$``."""
    parts, buf, i = [], [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            buf.append(value[i + 1] if value[i + 1] in ",|$\\" else ch + value[i + 1])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return parts


def _values(name: str, raw: str) -> list[str]:
    values = _split(raw, ",")
    if not raw or any(v == "" for v in values):
        raise InvalidRequest(f"search parameter {name!r} has an empty value", expression=[name])
    return values


def _escape_keep_pipes(raw: str) -> list[str]:
    """The comma-separated values of a token/quantity parameter, with ``\\|`` kept escaped for the second split."""
    out, buf, i = [], [], 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            buf.append(raw[i : i + 2])
            i += 2
            continue
        if ch == ",":
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    out.append("".join(buf))
    return out


def _pipe_values(name: str, raw: str) -> list[list[str]]:
    if not raw:
        raise InvalidRequest(f"search parameter {name!r} has an empty value", expression=[name])
    groups = [_split(v, "|") for v in _escape_keep_pipes(raw)]
    if any(g == [""] for g in groups):
        raise InvalidRequest(f"search parameter {name!r} has an empty value", expression=[name])
    return groups


# ------------------------------------------------------------------------------------ bound values
class _Binds:
    """The values of one search, bound by position: a statement built for one search is reused for every
    search of the same shape (same parameters, modifiers and value forms) with only these values changed."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any, *, expanding: bool = False) -> BindParameter[Any]:
        name = f"v{len(self.values)}"
        self.values[name] = value
        return bindparam(name, value, expanding=expanding)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ------------------------------------------------------------------------------------ filters
@dataclass(slots=True)
class _Filter:
    """One ANDed condition. ``rank`` orders candidates for driving the query (lower first; None: never).
    ``shape`` names everything about its SQL except the bound values."""

    rank: int | None
    shape: tuple[Any, ...]
    drive: Callable[[Res], ColumnElement[bool]]
    check: Callable[[Res], ColumnElement[bool]]
    lookup: Callable[[], Select[Any]] | None = None
    """The filter's index lookup alone (rids), for estimating its size."""

    def positive(self, res: Res) -> ColumnElement[bool]:
        """As the driver when it can drive, else as a probe (negations and :missing=true)."""
        return self.drive(res) if self.rank is not None else self.check(res)


def _index_filter(
    kind: str,
    rtype: str | None,
    code: str,
    pred: Predicate | None,
    shape: tuple[Any, ...],
    *,
    negate: bool,
    rank: int,
) -> _Filter:
    table = INDEX_TABLES[kind]

    def where(t: Res) -> list[ColumnElement[bool]]:
        clauses = [t.c.param == code]
        if pred is not None:
            clauses.append(pred(t))
        return clauses

    def lookup() -> Select[Any]:
        scope = [table.c.rtype == rtype] if rtype is not None else []
        return select(table.c.rid).where(*scope, *where(table))

    def drive(res: Res) -> ColumnElement[bool]:
        return res.c.rid.in_(lookup())

    def check(res: Res) -> ColumnElement[bool]:
        # No rtype here: without the leading column the lookup index is unusable, so the probe goes by rid.
        probe = exists().where(table.c.rid == res.c.rid, *where(table))
        return not_(probe) if negate else probe

    return _Filter(None if negate else rank, (kind, rtype, code, negate, *shape), drive, check, lookup)


Built = tuple[str, Predicate]


def _any_of(clauses: list[Built]) -> Built:
    preds = [p for _, p in clauses]
    return ",".join(s for s, _ in clauses), lambda t: or_(*(p(t) for p in preds))


def _token_clause(name: str, parts: list[str], b: _Binds) -> Built:
    if len(parts) == 1:
        code = b(parts[0])
        return "c", lambda t: t.c.code == code
    if len(parts) != 2:
        raise InvalidRequest(
            f"{name}: bad token {'|'.join(parts)!r} (use code, system|code, |code or system|)",
            expression=[name],
        )
    if parts[0] == "":
        code = b(parts[1])
        return "|c", lambda t: and_(t.c.code == code, t.c.system.is_(None))
    system = b(parts[0])
    if parts[1] == "":
        return "s|", lambda t: t.c.system == system
    code = b(parts[1])
    return "s|c", lambda t: and_(t.c.code == code, t.c.system == system)


def _string_pred(name: str, raw: str, modifier: str, dialect: str, b: _Binds) -> Built:
    values = _values(name, raw)
    if modifier == "exact":
        exact = b(values, expanding=True)
        return f"exact{len(values)}", lambda t: t.c.value.in_(exact)
    norms = [normalize(v) for v in values]
    if modifier == "contains":
        patterns = [b(f"%{_like_escape(n)}%") for n in norms]
        return f"contains{len(norms)}", lambda t: or_(*(t.c.norm.like(p, escape="\\") for p in patterns))
    if dialect == "sqlite":  # a range on norm uses ix_string_lookup; LIKE would not
        ranges = [(b(n), b(n + _TOP)) for n in norms]
        return f"prefix{len(norms)}", lambda t: or_(
            *(and_(t.c.norm >= lo, t.c.norm < hi) for lo, hi in ranges)
        )
    starts = [b(f"{_like_escape(n)}%") for n in norms]
    return f"prefix{len(norms)}", lambda t: or_(*(t.c.norm.like(p, escape="\\") for p in starts))


def _reference_clause(
    name: str, value: str, type_modifier: str | None, targets: Sequence[str], b: _Binds
) -> Built:
    if "/" not in value:  # a bare id
        tid = b(value)
        if type_modifier is not None:
            ttype = b(type_modifier)
            return "id:T", lambda t: and_(t.c.target_id == tid, t.c.target_type == ttype)
        return "id", lambda t: t.c.target_id == tid
    rtype, rid, url = parse_reference(value)
    if rtype is None or rid is None:
        bound = b(url)
        return "url", lambda t: t.c.url == bound
    if targets and rtype not in targets:
        raise InvalidRequest(
            f"{name}: {rtype} is not a target of this reference parameter", expression=[name]
        )
    if type_modifier is not None and rtype != type_modifier:
        raise InvalidRequest(
            f"{name}: {value!r} contradicts the :{type_modifier} modifier", expression=[name]
        )
    tid, ttype = b(rid), b(rtype)
    return "T/id", lambda t: and_(t.c.target_id == tid, t.c.target_type == ttype)


def _date_clause(name: str, value: str, b: _Binds) -> Built:
    m = _PREFIX.match(value)
    prefix, text = (m.group(1) or "eq", m.group(2)) if m else ("eq", value)
    span = date_range(text)
    if span is None:
        raise InvalidRequest(f"{name}: {value!r} is not a FHIR date, dateTime or instant", expression=[name])
    sl, sh = b(span[0]), b(span[1])

    def pred(t: Res) -> ColumnElement[bool]:
        lo, hi = t.c.low, t.c.high
        within = and_(lo >= sl, hi <= sh)
        # FHIR R4 §3.1.1.4.4 prefix semantics on ranges: the value's range against the parameter's range.
        match prefix:
            case "eq":
                return within
            case "ne":
                return not_(within)
            case "gt":
                return hi > sh
            case "lt":
                return lo < sl
            case "ge":
                return or_(hi > sh, within)
            case "le":
                return or_(lo < sl, within)
            case "sa":
                return lo > sh
            case "eb":
                return hi < sl
            case _:  # ap: the ranges overlap
                return and_(lo <= sh, hi >= sl)

    return prefix, pred


def _quantity_clause(name: str, parts: list[str], b: _Binds) -> Built:
    if len(parts) not in (1, 3):
        raise InvalidRequest(f"{name}: a quantity is [prefix]number[|system|code]", expression=[name])
    m = _PREFIX.match(parts[0])
    prefix, text = (m.group(1) or "eq", m.group(2)) if m else ("eq", parts[0])
    if not _NUMBER.match(text):
        raise InvalidRequest(f"{name}: {parts[0]!r} is not a number", expression=[name])
    try:
        number = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidRequest(f"{name}: {parts[0]!r} is not a number", expression=[name]) from exc
    exponent = number.as_tuple().exponent
    half = Decimal(5).scaleb((exponent if isinstance(exponent, int) else 0) - 1)  # implicit precision
    margin = abs(number) / 10
    n = b(number)
    lo, hi = {
        "eq": (number - half, number + half),
        "ne": (number - half, number + half),
        "ap": (number - margin, number + margin),
    }.get(prefix, (number, number))
    blo, bhi = b(lo), b(hi)
    system, code = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
    bsystem, bcode = b(system), b(code)

    def pred(t: Res) -> ColumnElement[bool]:
        v = t.c.value
        cmp = {
            "eq": and_(v >= blo, v < bhi),
            "ne": not_(and_(v >= blo, v < bhi)),
            "ap": and_(v >= blo, v <= bhi),
            "gt": v > n,
            "sa": v > n,
            "lt": v < n,
            "eb": v < n,
            "ge": v >= n,
            "le": v <= n,
        }[prefix]
        units = ([t.c.system == bsystem] if system else []) + ([t.c.code == bcode] if code else [])
        return and_(cmp, *units)

    return f"{prefix}{'s' if system else ''}{'c' if code else ''}", pred


_RANK = {"reference": 1, "token": 2, "uri": 2, "date": 4, "quantity": 4, "string": 5}


def _param_filter(
    rtype: str | None, p: SearchParam, name: str, modifier: str | None, raw: str, dialect: str, b: _Binds
) -> _Filter:
    """The condition for one ``name[:modifier]=raw`` on parameter ``p`` (not ``_id``, not chained)."""
    kind = p.table_kind
    if modifier == "missing":
        if raw not in ("true", "false"):
            raise InvalidRequest(f"{name}: :missing takes true or false", expression=[name])
        return _index_filter(kind, rtype, p.code, None, ("missing", raw), negate=raw == "true", rank=6)
    built: Built
    if p.type == "token" and modifier in (None, "not"):
        built = _any_of([_token_clause(name, parts, b) for parts in _pipe_values(name, raw)])
    elif p.type == "uri" and modifier is None:
        uris = b(_values(name, raw), expanding=True)
        built = "uri", lambda t: t.c.code.in_(uris)
    elif p.type == "string" and modifier in (None, "exact", "contains"):
        built = _string_pred(name, raw, modifier or "", dialect, b)
    elif p.type == "reference" and (modifier is None or modifier in p.targets):
        built = _any_of([_reference_clause(name, v, modifier, p.targets, b) for v in _values(name, raw)])
    elif p.type == "date" and modifier is None:
        built = _any_of([_date_clause(name, v, b) for v in _values(name, raw)])
    elif p.type == "quantity" and modifier is None:
        built = _any_of([_quantity_clause(name, parts, b) for parts in _pipe_values(name, raw)])
    else:
        raise InvalidRequest(
            f"{name}: modifier :{modifier} is not supported on {p.type} parameters", expression=[name]
        )
    rank = 3 if p.type == "string" and modifier == "exact" else _RANK[p.type]
    return _index_filter(kind, rtype, p.code, built[1], (built[0],), negate=modifier == "not", rank=rank)


def _id_filter(name: str, modifier: str | None, raw: str, b: _Binds) -> _Filter:
    if modifier not in (None, "not"):
        raise InvalidRequest(f"{name}: modifier :{modifier} is not supported on _id", expression=[name])
    ids = b(_values(name, raw), expanding=True)

    def clause(res: Res) -> ColumnElement[bool]:
        return res.c.id.not_in(ids) if modifier == "not" else res.c.id.in_(ids)

    return _Filter(None if modifier == "not" else 0, ("_id", modifier), clause, clause)


def _chain_filter(
    rtype: str,
    p: SearchParam,
    name: str,
    modifier: str | None,
    chained: str,
    raw: str,
    dialect: str,
    b: _Binds,
) -> _Filter:
    """``ref[:Type].param=value``: resources whose reference ``ref`` points at a match of ``param`` (one level)."""
    if p.type != "reference":
        raise InvalidRequest(f"{name}: only reference parameters can be chained", expression=[name])
    if modifier is not None and modifier not in p.targets:
        raise InvalidRequest(f"{name}: {modifier} is not a target of {p.code}", expression=[name])
    if "." in chained:
        raise InvalidRequest(f"{name}: chains are served one level deep", expression=[name])
    chained_code, _, chained_modifier = chained.partition(":")
    targets = [modifier] if modifier else [t for t in p.targets if chained_code in params_for(t)]
    if not targets:
        raise InvalidRequest(
            f"{name}: no target of {p.code} has the parameter {chained_code!r}", expression=[name]
        )
    inner: list[tuple[str, _Filter]] = []
    for target in targets:
        tp = params_for(target).get(chained_code)
        if tp is None:
            raise InvalidRequest(
                f"{name}: {target} has no search parameter {chained_code!r}", expression=[name]
            )
        if chained_code == "_id":
            inner.append((target, _id_filter(name, chained_modifier or None, raw, b)))
        else:
            inner.append((target, _param_filter(target, tp, name, chained_modifier or None, raw, dialect, b)))

    def refs(ref: Res) -> ColumnElement[bool]:
        alternatives = []
        for target, f in inner:
            ids = select(_TARGET.c.id).where(
                _TARGET.c.rtype == target, _TARGET.c.deleted == false(), f.positive(_TARGET)
            )
            alternatives.append(and_(ref.c.target_type == target, ref.c.target_id.in_(ids)))
        return or_(*alternatives)

    def drive(res: Res) -> ColumnElement[bool]:
        ref = idx_reference
        return res.c.rid.in_(select(ref.c.rid).where(ref.c.rtype == rtype, ref.c.param == p.code, refs(ref)))

    def check(res: Res) -> ColumnElement[bool]:
        ref = idx_reference
        return exists().where(ref.c.rid == res.c.rid, ref.c.param == p.code, refs(ref))

    shape = ("chain", rtype, p.code, tuple((t, f.shape) for t, f in inner))
    return _Filter(1, shape, drive, check)


# ------------------------------------------------------------------------------------ sorting
@dataclass(slots=True)
class _SortKey:
    code: str
    descending: bool
    expr: Callable[[Res], ColumnElement[Any]]


def _sort_key(params: dict[str, SearchParam], code: str, descending: bool, dialect: str) -> _SortKey:
    if code == "_id":
        return _SortKey(code, descending, lambda res: _collated(res.c.id, dialect))
    p = params.get(code)
    if p is None or p.type not in ("date", "string", "token"):
        raise InvalidRequest(f"_sort: cannot sort on {code!r}", expression=["_sort"])
    table = INDEX_TABLES[p.table_kind]
    agg = func.max if descending else func.min
    sentinel: float | str
    if p.type == "date":
        column, sentinel = ("high", MIN_INSTANT - 1) if descending else ("low", MAX_INSTANT + 1)
    else:
        column, sentinel = ("norm" if p.type == "string" else "code"), ("" if descending else _TOP)

    def expr(res: Res) -> ColumnElement[Any]:
        value = select(agg(table.c[column])).where(table.c.rid == res.c.rid, table.c.param == p.code)
        # Missing values sort last in both directions.
        key = func.coalesce(value.scalar_subquery(), literal(sentinel))
        return _collated(key, dialect) if p.type != "date" else key

    return _SortKey(code, descending, expr)


def _collated(expr: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """Byte-order comparison on PostgreSQL too, so keys order and compare exactly as on SQLite."""
    return expr.collate("C") if dialect == "postgresql" else expr


# ------------------------------------------------------------------------------------ the plan
@dataclass(slots=True)
class _Include:
    source: str
    code: str
    target: str | None


@dataclass(slots=True)
class _Plan:
    dialect: str
    resource_type: str | None
    binds: _Binds
    types: BindParameter[Any] | None = None
    filters: list[_Filter] = field(default_factory=list)
    sort: list[_SortKey] = field(default_factory=list)
    sort_spec: str = ""
    count: int = 0
    cursor: list[BindParameter[Any]] | None = None
    total: bool = False
    summary_count: bool = False
    includes: list[_Include] = field(default_factory=list)
    revincludes: list[_Include] = field(default_factory=list)
    applied: list[tuple[str, str]] = field(default_factory=list)
    order: list[Any] = field(default_factory=list)
    """The shapes of the filters and ``_type``, in the order their values were bound."""

    def shape(self, *extra: Any) -> tuple[Any, ...]:
        """Everything the SQL depends on except the bound values (the statement cache key)."""
        return (
            self.dialect,
            self.resource_type,
            tuple(self.order),
            self.sort_spec,
            self.cursor is not None,
            *extra,
        )


def _include(name: str, raw: str) -> _Include:
    parts = raw.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidRequest(
            f"{name}: expected SourceType:param[:TargetType], got {raw!r}", expression=[name]
        )
    source, code = parts[0], parts[1]
    p = params_for(source).get(code)
    if p is None or p.type != "reference":
        raise InvalidRequest(
            f"{name}: {source} has no reference search parameter {code!r}", expression=[name]
        )
    target = parts[2] if len(parts) == 3 else None
    if target is not None and target not in p.targets:
        raise InvalidRequest(f"{name}: {target} is not a target of {source}:{code}", expression=[name])
    return _Include(source, code, target)


def _int(name: str, raw: str) -> int:
    if not raw.isdigit():
        raise InvalidRequest(f"{name}: {raw!r} is not a non-negative integer", expression=[name])
    return int(raw)


def _decode_cursor(raw: str, sort_spec: str) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("_cursor: not a cursor this server issued", expression=["_cursor"]) from exc
    if not isinstance(values, list) or not values or values[0] != sort_spec:
        raise InvalidRequest("_cursor: it belongs to a search with another _sort", expression=["_cursor"])
    return values[1:]


def _encode_cursor(sort_spec: str, values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([sort_spec, *values])).rstrip(b"=").decode()


def _plan(
    dialect: str, resource_type: str | None, params: SearchParams, default_count: int, max_count: int
) -> _Plan:
    if resource_type is not None and resource_type not in served_types():
        raise InvalidRequest(f"unknown resource type {resource_type!r}")
    known = params_for(resource_type) if resource_type is not None else common_params()
    b = _Binds()
    plan = _Plan(dialect, resource_type, b, count=min(default_count, max_count))
    cursor_raw: str | None = None
    for name, raw in params:
        base, _, chained = name.partition(".")
        code, _, modifier = base.partition(":")
        if code in _RESULT_PARAMS:
            if code == "_count":
                plan.count = min(_int(name, raw), max_count)
                plan.applied.append((name, str(plan.count)))
                continue
            if code == "_sort":
                keys = _values(name, raw)
                plan.sort = [_sort_key(known, k.removeprefix("-"), k.startswith("-"), dialect) for k in keys]
                plan.sort_spec = raw
            elif code == "_cursor":
                cursor_raw = raw
                continue
            elif code == "_total":
                if raw not in ("none", "estimate", "accurate"):
                    raise InvalidRequest(
                        f"_total: {raw!r} is not none, estimate or accurate", expression=[name]
                    )
                plan.total = raw != "none"
            elif code == "_summary":
                if raw not in ("true", "false", "text", "data", "count"):
                    raise InvalidRequest(
                        f"_summary: {raw!r} is not true, false, text, data or count", expression=[name]
                    )
                plan.summary_count = raw == "count"
            elif code == "_include":
                plan.includes.extend(_include(name, v) for v in _values(name, raw))
            elif code == "_revinclude":
                plan.revincludes.extend(_include(name, v) for v in _values(name, raw))
            plan.applied.append((name, raw))
            continue
        if code == "_type" and resource_type is None:
            types = _values(name, raw)
            unknown = [t for t in types if t not in served_types()]
            if unknown:
                raise InvalidRequest(f"_type: unknown resource type {unknown[0]!r}", expression=[name])
            plan.types = b(types, expanding=True)
            plan.order.append("_type")
        elif code == "_id" and not chained:
            plan.filters.append(_id_filter(name, modifier or None, raw, b))
        else:
            p = known.get(code)
            if p is None:
                where = resource_type or "a search across all types"
                raise InvalidRequest(f"unknown search parameter {code!r} for {where}", expression=[name])
            if chained:
                if resource_type is None:
                    raise InvalidRequest(f"{name}: chaining needs a resource type", expression=[name])
                plan.filters.append(
                    _chain_filter(resource_type, p, name, modifier or None, chained, raw, dialect, b)
                )
            else:
                plan.filters.append(_param_filter(resource_type, p, name, modifier or None, raw, dialect, b))
        if code != "_type":
            plan.order.append(plan.filters[-1].shape)
        plan.applied.append((name, raw))
    if cursor_raw is not None:
        after = _decode_cursor(cursor_raw, plan.sort_spec)
        if len(after) != len(plan.sort) + 1:
            raise InvalidRequest("_cursor: it belongs to another search", expression=["_cursor"])
        plan.cursor = [b(v) for v in after]
        plan.applied.append(("_cursor", cursor_raw))
    return plan


# ------------------------------------------------------------------------------------ statements
_STATEMENTS: dict[tuple[Any, ...], Select[Any]] = {}
_STATEMENTS_MAX = 2048


def _cached(key: tuple[Any, ...], build: Callable[[], Select[Any]]) -> Select[Any]:
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        if len(_STATEMENTS) >= _STATEMENTS_MAX:
            _STATEMENTS.clear()
        stmt = _STATEMENTS[key] = build()
    return stmt


def _driver(conn: Connection, plan: _Plan, *, ordered_page: bool) -> int | None:
    """Index (in ``plan.filters``) of the positive filter whose lookup drives the query, or None to walk the
    type's rids in order.

    Ids, references and chains are selective: they drive. Otherwise, for a default-order page on SQLite, the
    first lookup under ``_PROBE_CAP`` rows drives; when every lookup is large, walking rids and probing
    returns the page sooner than collecting every match first.
    """
    candidates = sorted(
        (i for i, f in enumerate(plan.filters) if f.rank is not None), key=lambda i: plan.filters[i].rank or 0
    )
    if not candidates:
        return None
    best = plan.filters[candidates[0]]
    if (best.rank or 0) <= 1 or not ordered_page or plan.dialect != "sqlite":
        return candidates[0]
    for i in candidates:
        lookup = plan.filters[i].lookup
        if lookup is None:
            return i
        sized = _cached(plan.shape("size", i), _size_statement(lookup))
        if conn.execute(sized, plan.binds.values).scalar_one() < _PROBE_CAP:
            return i
    return None


def _size_statement(lookup: Callable[[], Select[Any]]) -> Callable[[], Select[Any]]:
    return lambda: select(func.count()).select_from(lookup().limit(_PROBE_CAP).subquery())


def _where(plan: _Plan, res: Res, driver: int | None) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [res.c.deleted == false()]
    if plan.resource_type is not None:
        clauses.insert(0, res.c.rtype == plan.resource_type)
    elif plan.types is not None:
        clauses.insert(0, res.c.rtype.in_(plan.types))
    for i, f in enumerate(plan.filters):
        clauses.append(f.drive(res) if i == driver else f.check(res))
    return clauses


def _keyset(
    keys: list[ColumnElement[Any]], sort: list[_SortKey], res: Res, after: list[BindParameter[Any]]
) -> ColumnElement[bool]:
    """Rows strictly after ``after`` (the last row's key values and rid) in the sort order."""
    columns = [*keys, res.c.rid]
    descending = [k.descending for k in sort] + [False]
    alternatives = []
    for i in range(len(columns)):
        equal = [columns[j] == after[j] for j in range(i)]
        step = columns[i] < after[i] if descending[i] else columns[i] > after[i]
        alternatives.append(and_(*equal, step))
    return or_(*alternatives)


_STORED = (
    resource.c.rtype,
    resource.c.id,
    resource.c.version_id,
    resource.c.last_updated,
    resource.c.content,
)


def _stored(rtype: str, id: str, version: int, updated: str, content: str | None) -> Stored:
    return Stored(rtype, id, version, updated, content.encode() if content is not None else b"")


def _page_statement(plan: _Plan, driver: int | None) -> Select[Any]:
    """One more row than the page holds (to know whether a next page exists): rid and the sort keys, plus
    the stored columns when the order is the default one (sorted pages load them afterwards, by rid)."""
    r = resource
    keys = [k.expr(r) for k in plan.sort]
    stmt = select(r.c.rid, *keys) if keys else select(r.c.rid, *_STORED)
    stmt = stmt.where(*_where(plan, r, driver))
    if plan.cursor is not None:
        stmt = stmt.where(_keyset(keys, plan.sort, r, plan.cursor))
    order = [k.desc() if s.descending else k.asc() for k, s in zip(keys, plan.sort, strict=True)]
    return stmt.order_by(*order, r.c.rid).limit(bindparam("page_limit", plan.count + 1))


def _load(conn: Connection, rids: Sequence[int]) -> dict[int, Stored]:
    if not rids:
        return {}
    rows = conn.execute(select(resource.c.rid, *_STORED).where(resource.c.rid.in_(rids)))
    return {row[0]: _stored(*row[1:]) for row in rows}


def _includes(conn: Connection, plan: _Plan, page: list[tuple[int, Stored]]) -> list[Stored]:
    if not page or not (plan.includes or plan.revincludes):
        return []
    rids = [rid for rid, _ in page]
    seen = set(rids)
    found: list[int] = []
    ref, r = idx_reference, resource
    queries: list[Select[Any]] = []
    for inc in plan.includes:
        q = (
            select(r.c.rid)
            .join(ref, and_(r.c.rtype == ref.c.target_type, r.c.id == ref.c.target_id))
            .where(
                ref.c.rid.in_(rids),
                ref.c.rtype == inc.source,
                ref.c.param == inc.code,
                r.c.deleted == false(),
            )
        )
        queries.append(q.where(ref.c.target_type == inc.target) if inc.target else q)
    for inc in plan.revincludes:
        for rtype in sorted({s.resource_type for _, s in page}):
            if inc.target is not None and inc.target != rtype:
                continue
            ids = [s.id for _, s in page if s.resource_type == rtype]
            queries.append(
                select(r.c.rid)
                .join(ref, r.c.rid == ref.c.rid)
                .where(
                    ref.c.rtype == inc.source,
                    ref.c.param == inc.code,
                    ref.c.target_type == rtype,
                    ref.c.target_id.in_(ids),
                    r.c.deleted == false(),
                )
            )
    for q in queries:
        for rid in conn.execute(q).scalars():
            if rid not in seen:
                seen.add(rid)
                found.append(rid)
    loaded = _load(conn, found)
    return [loaded[rid] for rid in found if rid in loaded]


def page_query(
    conn: Connection, dialect_name: str, resource_type: str | None, params: SearchParams, *, count: int
) -> str:
    """The first-page SQL for ``params`` with its values inlined, as run_search runs it (for EXPLAIN)."""
    plan = _plan(dialect_name, resource_type, params, count, count)
    stmt = _page_statement(plan, _driver(conn, plan, ordered_page=not plan.sort))
    return str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))


def run_search(
    conn: Connection,
    dialect_name: str,
    resource_type: str | None,
    params: SearchParams,
    *,
    default_count: int,
    max_count: int,
) -> SearchResult:
    """One page of ``resource_type?params`` (every type when None): matches, includes, optional total, cursor.

    Raises InvalidRequest naming the parameter for an unknown parameter, modifier or a malformed value.
    """
    plan = _plan(dialect_name, resource_type, params, default_count, max_count)
    values = plan.binds.values
    result = SearchResult(matches=[], applied=plan.applied)
    if plan.total or plan.summary_count or plan.count == 0:
        driver = _driver(conn, plan, ordered_page=False)
        counting = _cached(
            plan.shape("count", driver),
            lambda: select(func.count()).select_from(resource).where(*_where(plan, resource, driver)),
        )
        result.total = conn.execute(counting, values).scalar_one()
        if plan.summary_count or plan.count == 0:
            return result
    driver = _driver(conn, plan, ordered_page=not plan.sort)
    stmt = _cached(plan.shape("page", driver), lambda: _page_statement(plan, driver))
    rows = conn.execute(stmt, {**values, "page_limit": plan.count + 1}).all()
    has_next = len(rows) > plan.count
    rows = rows[: plan.count]
    if plan.sort:
        loaded = _load(conn, [row[0] for row in rows])
        page = [(row[0], loaded[row[0]]) for row in rows if row[0] in loaded]
    else:
        page = [(row[0], _stored(*row[1:])) for row in rows]
    result.matches = [s for _, s in page]
    if has_next:
        last = rows[-1]
        result.next_cursor = _encode_cursor(plan.sort_spec, [*last[1 : 1 + len(plan.sort)], last[0]])
    elif plan.cursor is None and result.total is None:
        result.total = len(result.matches)
    result.includes = _includes(conn, plan, page)
    return result


def match_rids(conn: Connection, dialect_name: str, resource_type: str, params: SearchParams) -> list[int]:
    """Every current resource of ``resource_type`` matching ``params`` (conditional create, update, delete).

    Result-shaping parameters (``_count``, ``_sort``, ...) are accepted and ignored: all matches are returned.
    """
    plan = _plan(dialect_name, resource_type, params, 1, 1)
    driver = _driver(conn, plan, ordered_page=False)
    stmt = _cached(
        plan.shape("match", driver),
        lambda: select(resource.c.rid).where(*_where(plan, resource, driver)).order_by(resource.c.rid),
    )
    return list(conn.execute(stmt, plan.binds.values).scalars())


__all__ = ["match_rids", "page_query", "run_search"]
