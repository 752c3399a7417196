"""Deletions in the import log: an import's deals deleted in the CRM counted apart from the deals it changed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("imports") as batch:  # batch: SQLite alters a table by copying it
        batch.add_column(sa.Column("deals_deleted", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("imports") as batch:
        batch.drop_column("deals_deleted")
