"""Deal signals (SPEC 2.2): the CRM's own field history beside the changes imports find, and activities.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("field_history") as batch:  # batch: SQLite alters a table by copying it
        batch.add_column(sa.Column("origin", sa.String(10), nullable=False, server_default="import"))
    with op.batch_alter_table("imports") as batch:
        batch.add_column(sa.Column("signals_new", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "activities",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deal_id", sa.String(200), nullable=False, index=True),
        sa.Column("occurred_at", sa.DateTime, nullable=False),
        sa.Column("type", sa.String(200), nullable=True),
        sa.Column("import_id", sa.Integer, sa.ForeignKey("imports.id"), nullable=False))


def downgrade() -> None:
    op.drop_table("activities")
    with op.batch_alter_table("imports") as batch:
        batch.drop_column("signals_new")
    with op.batch_alter_table("field_history") as batch:
        batch.drop_column("origin")
