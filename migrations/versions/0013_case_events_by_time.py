"""Case events by time: Open311's servicerequestupdates asks for the changes between two dates.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_case_events_created_at", "case_events", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_case_events_created_at", table_name="case_events")
