"""The store's tables (SQLAlchemy Core). One schema for SQLite and PostgreSQL; Alembic migrates it.

- ``resource``: the current version of each resource, keyed by a surrogate ``rid`` that the index tables
  and keyset paging use (integer joins, not (type, id) strings).
- ``resource_version``: every version ever written, deletion markers included (history, vread).
- ``idx_*``: search index rows, one per extracted value, rebuilt on every write of the resource. The
  extractors are driven by the SearchParameter table in ``conformance/``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine, UserDefinedType


class _JsonbColumn(UserDefinedType[str]):
    """The JSONB column type on PostgreSQL without the driver's JSON (de)serialization: values stay text."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "JSONB"


class _JsonIn(FunctionElement[str]):
    """A bound JSON text as the column expects it: ``CAST(:p AS JSONB)`` on PostgreSQL, as is elsewhere."""

    inherit_cache = True


class _JsonOut(FunctionElement[str]):
    """A selected JSON column as text: ``CAST(col AS TEXT)`` on PostgreSQL, as is elsewhere."""

    inherit_cache = True


@compiles(_JsonIn)
@compiles(_JsonOut)
def _json_as_is(element: FunctionElement[str], compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_JsonIn, "postgresql")
def _json_in_pg(element: _JsonIn, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS JSONB)"


@compiles(_JsonOut, "postgresql")
def _json_out_pg(element: _JsonOut, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS TEXT)"


class JsonDocument(TypeDecorator[str]):
    """A resource's JSON text: TEXT on SQLite, JSONB on PostgreSQL.

    Values go in and come out as JSON *text* (never parsed dicts), so reads return stored bytes as they are
    (on PostgreSQL: JSONB's own rendering of them). Binds are cast text→JSONB and selects JSONB→text by the
    per-dialect compiled casts above, so the driver never parses a document.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(_JsonbColumn())
        return dialect.type_descriptor(Text())

    def bind_expression(self, bindvalue: BindParameter[str]) -> ColumnElement[str]:
        return _JsonIn(bindvalue)

    def column_expression(self, column: ColumnElement[str]) -> ColumnElement[str]:
        return _JsonOut(column)


metadata = MetaData()

resource = Table(
    "resource",
    metadata,
    Column("rid", Integer().with_variant(BigInteger(), "postgresql"), primary_key=True, autoincrement=True),
    Column("rtype", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", String(40), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("content", JsonDocument(), nullable=True),
    UniqueConstraint("rtype", "id", name="uq_resource_type_id"),
)
Index("ix_resource_type_rid", resource.c.rtype, resource.c.rid)
Index("ix_resource_type_updated", resource.c.rtype, resource.c.last_updated)

resource_version = Table(
    "resource_version",
    metadata,
    Column("rid", ForeignKey("resource.rid", ondelete="CASCADE"), primary_key=True),
    Column("version_id", Integer, primary_key=True),
    Column("rtype", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("last_updated", String(40), nullable=False),
    Column("method", String(8), nullable=False),
    Column("content", JsonDocument(), nullable=True),
)
Index("ix_version_updated", resource_version.c.last_updated)
Index("ix_version_type_updated", resource_version.c.rtype, resource_version.c.last_updated)


def _rid() -> Column[Any]:
    return Column("rid", ForeignKey("resource.rid", ondelete="CASCADE"), nullable=False)


idx_token = Table(
    "idx_token",
    metadata,
    _rid(),
    Column("rtype", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("system", String(255), nullable=True),
    Column("code", String(255), nullable=True),
    Column("display", Text, nullable=True),  # for :text
)
Index("ix_token_lookup", idx_token.c.rtype, idx_token.c.param, idx_token.c.code, idx_token.c.system, idx_token.c.rid)
Index("ix_token_rid", idx_token.c.rid)

idx_string = Table(
    "idx_string",
    metadata,
    _rid(),
    Column("rtype", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("norm", String(255), nullable=False),  # case- and accent-folded, for default and :contains
    Column("value", Text, nullable=False),  # as written, for :exact
)
Index("ix_string_lookup", idx_string.c.rtype, idx_string.c.param, idx_string.c.norm, idx_string.c.rid)
Index("ix_string_rid", idx_string.c.rid)

idx_reference = Table(
    "idx_reference",
    metadata,
    _rid(),
    Column("rtype", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("target_type", String(64), nullable=True),
    Column("target_id", String(255), nullable=True),
    Column("url", Text, nullable=True),  # absolute or canonical references that are not Type/id
)
Index(
    "ix_reference_lookup",
    idx_reference.c.rtype,
    idx_reference.c.param,
    idx_reference.c.target_id,
    idx_reference.c.target_type,
    idx_reference.c.rid,
)
Index("ix_reference_target", idx_reference.c.target_type, idx_reference.c.target_id)
Index("ix_reference_rid", idx_reference.c.rid)

idx_date = Table(
    "idx_date",
    metadata,
    _rid(),
    Column("rtype", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("low", Float, nullable=False),  # epoch seconds (UTC) of the first instant the value covers
    Column("high", Float, nullable=False),  # epoch seconds of the last instant it covers
)
Index("ix_date_lookup", idx_date.c.rtype, idx_date.c.param, idx_date.c.low, idx_date.c.high, idx_date.c.rid)
Index("ix_date_rid", idx_date.c.rid)

idx_quantity = Table(
    "idx_quantity",
    metadata,
    _rid(),
    Column("rtype", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("value", Numeric(24, 8), nullable=False),
    Column("system", String(255), nullable=True),
    Column("code", String(64), nullable=True),
)
Index("ix_quantity_lookup", idx_quantity.c.rtype, idx_quantity.c.param, idx_quantity.c.value, idx_quantity.c.rid)
Index("ix_quantity_rid", idx_quantity.c.rid)

INDEX_TABLES = {
    "token": idx_token,
    "string": idx_string,
    "reference": idx_reference,
    "date": idx_date,
    "quantity": idx_quantity,
}
"""SearchParameter.type → the table its values live in (uri params are indexed as tokens without system)."""
