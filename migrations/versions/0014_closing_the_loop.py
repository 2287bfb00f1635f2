"""Closing the loop: indexes for the duplicate look-up at intake (civic.duplicates).

Revision ID: 0014
Revises: 0012
Create Date: 2026-12-06 08:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_cases_category_lat_lon", "cases", ["category", "latitude", "longitude"], unique=False)
    op.create_index(
        "ix_cases_district_dong_category_created", "cases", ["district", "dong", "category", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_cases_district_dong_category_created", table_name="cases")
    op.drop_index("ix_cases_category_lat_lon", table_name="cases")
