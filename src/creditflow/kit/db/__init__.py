from creditflow.kit.db.base import Base, CreditsColumn, UTCDateTime
from creditflow.kit.db.session import Database, is_postgres

__all__ = ["Base", "CreditsColumn", "UTCDateTime", "Database", "is_postgres"]
