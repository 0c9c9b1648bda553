"""Initial schema: resource, resource_version and the five search index tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

A frozen copy of ``interop/store/schema.py`` as of this revision (migrations never import the live schema).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_BIGINT = sa.Integer().with_variant(sa.BigInteger(), "postgresql")
_JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")


def _rid() -> sa.Column[int]:
    return sa.Column(
        "rid", _BIGINT, sa.ForeignKey("resource.rid", ondelete="CASCADE"), nullable=False
    )


def _keyed(name: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        name,
        _rid(),
        sa.Column("rtype", sa.String(64), nullable=False),
        sa.Column("param", sa.String(64), nullable=False),
        *columns,
    )


def upgrade() -> None:
    op.create_table(
        "resource",
        sa.Column("rid", _BIGINT, primary_key=True, autoincrement=True),
        sa.Column("rtype", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("version_id", sa.Integer, nullable=False),
        sa.Column("last_updated", sa.String(40), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("content", _JSON, nullable=True),
        sa.UniqueConstraint("rtype", "id", name="uq_resource_type_id"),
    )
    op.create_index("ix_resource_type_rid", "resource", ["rtype", "rid"])
    op.create_index("ix_resource_type_updated", "resource", ["rtype", "last_updated"])

    op.create_table(
        "resource_version",
        sa.Column("rid", _BIGINT, sa.ForeignKey("resource.rid", ondelete="CASCADE"), primary_key=True),
        sa.Column("version_id", sa.Integer, primary_key=True),
        sa.Column("rtype", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("last_updated", sa.String(40), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("content", _JSON, nullable=True),
    )
    op.create_index("ix_version_updated", "resource_version", ["last_updated"])
    op.create_index("ix_version_type_updated", "resource_version", ["rtype", "last_updated"])

    _keyed(
        "idx_token",
        sa.Column("system", sa.String(255), nullable=True),
        sa.Column("code", sa.String(255), nullable=True),
        sa.Column("display", sa.Text, nullable=True),
    )
    op.create_index("ix_token_lookup", "idx_token", ["rtype", "param", "code", "system", "rid"])
    op.create_index("ix_token_rid", "idx_token", ["rid"])

    _keyed(
        "idx_string",
        sa.Column("norm", sa.String(255), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_index("ix_string_lookup", "idx_string", ["rtype", "param", "norm", "rid"])
    op.create_index("ix_string_rid", "idx_string", ["rid"])

    _keyed(
        "idx_reference",
        sa.Column("target_type", sa.String(64), nullable=True),
        sa.Column("target_id", sa.String(255), nullable=True),
        sa.Column("url", sa.Text, nullable=True),
    )
    op.create_index(
        "ix_reference_lookup", "idx_reference", ["rtype", "param", "target_id", "target_type", "rid"]
    )
    op.create_index("ix_reference_target", "idx_reference", ["target_type", "target_id"])
    op.create_index("ix_reference_rid", "idx_reference", ["rid"])

    _keyed(
        "idx_date",
        sa.Column("low", sa.Float, nullable=False),
        sa.Column("high", sa.Float, nullable=False),
    )
    op.create_index("ix_date_lookup", "idx_date", ["rtype", "param", "low", "high", "rid"])
    op.create_index("ix_date_rid", "idx_date", ["rid"])

    _keyed(
        "idx_quantity",
        sa.Column("value", sa.Numeric(24, 8), nullable=False),
        sa.Column("system", sa.String(255), nullable=True),
        sa.Column("code", sa.String(64), nullable=True),
    )
    op.create_index("ix_quantity_lookup", "idx_quantity", ["rtype", "param", "value", "rid"])
    op.create_index("ix_quantity_rid", "idx_quantity", ["rid"])


def downgrade() -> None:
    for name in ("idx_quantity", "idx_date", "idx_reference", "idx_string", "idx_token", "resource_version"):
        op.drop_table(name)
    op.drop_table("resource")
