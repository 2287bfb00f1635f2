"""Live takeover (conversations.held_by_user_id, operators' desk phone) and admin tables.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Batch mode: SQLite adds a foreign key only by recreating the table.
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_by_user_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("held_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("rasa_paused", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index(batch_op.f("ix_conversations_held_by_user_id"), ["held_by_user_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_conversations_held_by_user_id_console_users"), "console_users", ["held_by_user_id"], ["id"]
        )
    with op.batch_alter_table("console_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("desk_phone_ciphertext", sa.LargeBinary(), nullable=True))
    op.create_table(
        "canned_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_answers")),
    )
    op.create_table(
        "routing_overrides",
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("district", sa.String(length=16), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_routing_overrides_department_id_departments")
        ),
        sa.PrimaryKeyConstraint("category", "district", name=op.f("pk_routing_overrides")),
    )
    op.create_table(
        "category_deadlines",
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("category", name=op.f("pk_category_deadlines")),
    )


def downgrade() -> None:
    op.drop_table("category_deadlines")
    op.drop_table("routing_overrides")
    op.drop_table("canned_answers")
    with op.batch_alter_table("console_users", schema=None) as batch_op:
        batch_op.drop_column("desk_phone_ciphertext")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_conversations_held_by_user_id_console_users"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_conversations_held_by_user_id"))
        batch_op.drop_column("rasa_paused")
        batch_op.drop_column("held_since")
        batch_op.drop_column("held_by_user_id")
