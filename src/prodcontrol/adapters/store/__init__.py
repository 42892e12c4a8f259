"""The evidence store over SQLAlchemy 2 and Alembic (SQLite by default, PostgreSQL in production).

Import :class:`prodcontrol.adapters.store.sql.SqlEvidenceStore` and
:func:`prodcontrol.adapters.store.migrate.ensure_schema` directly: this package stays empty so
importing it does not pull in SQLAlchemy for code that only needs the port.
"""
