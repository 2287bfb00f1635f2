"""Closing the loop: indexes for the duplicate look-up at intake (civic.duplicates), the "fixed?" answers.

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-06 08:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_feedback_case_id_cases")),
        sa.ForeignKeyConstraint(["event_id"], ["case_events.id"], name=op.f("fk_case_feedback_event_id_case_events")),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"], name=op.f("fk_case_feedback_conversation_id_conversations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_feedback")),
        sa.UniqueConstraint("event_id", "conversation_id", name=op.f("uq_case_feedback_event_id_conversation_id")),
    )
    op.create_index("ix_case_feedback_case_id", "case_feedback", ["case_id"], unique=False)
    op.create_index("ix_case_feedback_conversation_id", "case_feedback", ["conversation_id"], unique=False)
    op.create_index("ix_case_feedback_state_asked", "case_feedback", ["state", "asked_at"], unique=False)
    op.create_index("ix_cases_category_lat_lon", "cases", ["category", "latitude", "longitude"], unique=False)
    op.create_index(
        "ix_cases_district_dong_category_created", "cases", ["district", "dong", "category", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_table("case_feedback")
    op.drop_index("ix_cases_district_dong_category_created", table_name="cases")
    op.drop_index("ix_cases_category_lat_lon", table_name="cases")
