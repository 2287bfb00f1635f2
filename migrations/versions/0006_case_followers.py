"""Case merging: cases.merged_into_id, case_followers, and the inbox, similar-cases and dashboard indexes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_followers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_followers_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name=op.f("fk_case_followers_conversation_id_conversations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_followers")),
        sa.UniqueConstraint("case_id", "conversation_id", name=op.f("uq_case_followers_case_id_conversation_id")),
    )
    op.create_index(op.f("ix_case_followers_conversation_id"), "case_followers", ["conversation_id"], unique=False)
    op.create_index(
        "ix_case_events_to_status_created", "case_events", ["to_status", "created_at", "case_id"], unique=False
    )
    # Batch mode: SQLite adds a foreign key only by recreating the table.
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_cases_category_created", ["category", "created_at"], unique=False)
        batch_op.create_index("ix_cases_department_status_due", ["department_id", "status", "due_at"], unique=False)
        batch_op.create_index("ix_cases_status_due", ["status", "due_at"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_cases_merged_into_id_cases"), "cases", ["merged_into_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_cases_merged_into_id_cases"), type_="foreignkey")
        batch_op.drop_index("ix_cases_status_due")
        batch_op.drop_index("ix_cases_department_status_due")
        batch_op.drop_index("ix_cases_category_created")
        batch_op.drop_column("merged_into_id")
    op.drop_index("ix_case_events_to_status_created", table_name="case_events")
    op.drop_index(op.f("ix_case_followers_conversation_id"), table_name="case_followers")
    op.drop_table("case_followers")
