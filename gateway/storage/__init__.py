"""Persistence: SQLAlchemy models, engine set-up, Alembic migrations, the rows of the request path
and the worker, protocol numbering, the access log, retention. It knows no package above it."""
