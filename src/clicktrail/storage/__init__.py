"""Storage adapter: SQLAlchemy Core tables, Alembic migrations, SQLite and PostgreSQL specifics."""
