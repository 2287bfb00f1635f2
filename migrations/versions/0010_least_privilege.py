"""Least privilege: the spent single-use tokens of the 120 line's media streams.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "spent_stream_tokens",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("spent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_spent_stream_tokens")),
    )
    op.create_index(op.f("ix_spent_stream_tokens_expires_at"), "spent_stream_tokens", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_spent_stream_tokens_expires_at"), table_name="spent_stream_tokens")
    op.drop_table("spent_stream_tokens")
