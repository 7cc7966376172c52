"""Alembic migrations, shipped inside the package; driven by `creditflow.kit.db.migrate`."""
