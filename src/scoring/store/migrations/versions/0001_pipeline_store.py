"""The pipeline store: deals, stage history, field history, imports, forecast snapshots.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("imported_at", sa.DateTime, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("deals_new", sa.Integer, nullable=False),
        sa.Column("deals_changed", sa.Integer, nullable=False),
        sa.Column("history_new", sa.Integer, nullable=False))
    op.create_table(
        "deals",
        sa.Column("deal_id", sa.String(200), primary_key=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("amount", sa.Float, nullable=True),
        sa.Column("stage", sa.String(200), nullable=False),
        sa.Column("status", sa.String(10), nullable=False, index=True),
        sa.Column("closed_at", sa.DateTime, nullable=True),
        sa.Column("stage_entered_at", sa.DateTime, nullable=True),
        sa.Column("expected_close_date", sa.DateTime, nullable=True),
        sa.Column("features", sa.Text, nullable=False),
        sa.Column("import_id", sa.Integer, sa.ForeignKey("imports.id"), nullable=False))
    op.create_table(
        "stage_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deal_id", sa.String(200), nullable=False, index=True),
        sa.Column("stage", sa.String(200), nullable=False),
        sa.Column("entered_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("deal_id", "stage", "entered_at", name="uq_stage_entry"))
    op.create_table(
        "field_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("deal_id", sa.String(200), nullable=False, index=True),
        sa.Column("field", sa.String(50), nullable=False),
        sa.Column("old_value", sa.Text, nullable=True),
        sa.Column("new_value", sa.Text, nullable=True),
        sa.Column("changed_at", sa.DateTime, nullable=False, index=True),
        sa.Column("import_id", sa.Integer, sa.ForeignKey("imports.id"), nullable=False))
    op.create_table(
        "forecast_snapshots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("taken_on", sa.Date, nullable=False),
        sa.Column("taken_at", sa.DateTime, nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("period", sa.String(10), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("model_version", sa.String(100), nullable=False),
        sa.Column("booked", sa.Float, nullable=False),
        sa.Column("pipeline", sa.Float, nullable=False),
        sa.Column("new_deals", sa.Float, nullable=False),
        sa.Column("bookings", sa.Float, nullable=False),
        sa.Column("bookings_p10", sa.Float, nullable=False),
        sa.Column("bookings_p90", sa.Float, nullable=False),
        sa.Column("fixed", sa.Float, nullable=False),
        sa.UniqueConstraint("taken_on", "period", "period_start", name="uq_snapshot_day"))
    op.create_index("ix_snapshot_period", "forecast_snapshots", ["period", "period_start"])


def downgrade() -> None:
    op.drop_index("ix_snapshot_period", "forecast_snapshots")
    for table in ("forecast_snapshots", "field_history", "stage_history", "deals", "imports"):
        op.drop_table(table)
