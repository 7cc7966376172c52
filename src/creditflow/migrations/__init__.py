"""Alembic migrations, shipped inside the package; driven by `creditflow.migrations.runner`."""
