"""Alembic's environment for the pipeline store: run by :func:`scoring.store.pipeline.migrate` on the
connection it is given (no alembic.ini: the store's URL comes from the service's or the CLI's settings)."""
from __future__ import annotations

from alembic import context

from scoring.store.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  version_table="pipeline_store_version")  # its own: the database may hold MLflow's too
with context.begin_transaction():
    context.run_migrations()
