"""The pipeline store: the company's deals, their history and the forecasts taken of them, in a SQL database
(SQLite by default, PostgreSQL for a team) whose schema is kept by Alembic migrations."""
