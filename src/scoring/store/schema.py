"""The pipeline store's tables (SQLAlchemy 2). The schema itself is made and changed by the Alembic
migrations next to this module; these classes only describe it to the code."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Deal(Base):
    """A deal as the last import that changed it said (canonical columns; features as JSON)."""

    __tablename__ = "deals"

    deal_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    amount: Mapped[float | None] = mapped_column(Float)
    stage: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    stage_entered_at: Mapped[datetime | None] = mapped_column(DateTime)
    expected_close_date: Mapped[datetime | None] = mapped_column(DateTime)
    features: Mapped[str] = mapped_column(Text, default="{}")
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id"))


class StageEntry(Base):
    """A deal entering a stage (the stage history)."""

    __tablename__ = "stage_history"
    __table_args__ = (UniqueConstraint("deal_id", "stage", "entered_at", name="uq_stage_entry"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deal_id: Mapped[str] = mapped_column(String(200), index=True)
    stage: Mapped[str] = mapped_column(String(200))
    entered_at: Mapped[datetime] = mapped_column(DateTime)


class FieldChange(Base):
    """A change of a field of a deal: one an import found (``origin`` import: amount, stage, status, close
    dates, the other fields as one JSON object, dated at the import), or one the CRM's field history recorded
    (``origin`` crm, SPEC 2.2)."""

    __tablename__ = "field_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deal_id: Mapped[str] = mapped_column(String(200), index=True)
    field: Mapped[str] = mapped_column(String(50))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id"))
    origin: Mapped[str] = mapped_column(String(10), default="import")


class Activity(Base):
    """An activity logged on a deal (call, email, meeting, ...)."""

    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deal_id: Mapped[str] = mapped_column(String(200), index=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime)
    type: Mapped[str | None] = mapped_column(String(200))
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id"))


class Import(Base):
    """One import that changed the store: when, from what, and what it changed."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    imported_at: Mapped[datetime] = mapped_column(DateTime)
    source: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    deals_new: Mapped[int] = mapped_column(Integer)
    deals_changed: Mapped[int] = mapped_column(Integer)
    history_new: Mapped[int] = mapped_column(Integer)
    signals_new: Mapped[int] = mapped_column(Integer, default=0)  # CRM field changes and activities not seen before
    deals_deleted: Mapped[int] = mapped_column(Integer, default=0)  # stored deals the export marks deleted


class ForecastSnapshot(Base):
    """The current period's forecast as it stood on a day (one per day, period kind and kind of trigger)."""

    __tablename__ = "forecast_snapshots"
    __table_args__ = (UniqueConstraint("taken_on", "period", "period_start", name="uq_snapshot_day"),
                      Index("ix_snapshot_period", "period", "period_start"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    taken_on: Mapped[date] = mapped_column(Date)
    taken_at: Mapped[datetime] = mapped_column(DateTime)
    trigger: Mapped[str] = mapped_column(String(20))
    period: Mapped[str] = mapped_column(String(10))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    model_version: Mapped[str] = mapped_column(String(100))
    booked: Mapped[float] = mapped_column(Float)
    pipeline: Mapped[float] = mapped_column(Float)
    new_deals: Mapped[float] = mapped_column(Float)
    bookings: Mapped[float] = mapped_column(Float)
    bookings_p10: Mapped[float] = mapped_column(Float)
    bookings_p90: Mapped[float] = mapped_column(Float)
    fixed: Mapped[float] = mapped_column(Float)
