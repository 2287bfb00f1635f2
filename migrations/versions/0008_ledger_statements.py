"""Ledger: signed notes that bind each poll's statement.

Polls keep the canonical JSON statement their checkpoints sign (question, options, window, kind of
rule); checkpoints keep their C2SP signed note. Both are nullable: rows from before are re-signed on
first read with the key from the settings, after their old signature is checked (civic/ledger.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("polls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ledger_statement", sa.Text(), nullable=True))
    with op.batch_alter_table("ledger_checkpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_checkpoints", schema=None) as batch_op:
        batch_op.drop_column("note")
    with op.batch_alter_table("polls", schema=None) as batch_op:
        batch_op.drop_column("ledger_statement")
