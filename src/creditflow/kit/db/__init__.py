from creditflow.kit.db.base import Base, CreditsColumn, UTCDateTime, partial_index
from creditflow.kit.db.session import Database, is_postgres

__all__ = ["Base", "CreditsColumn", "UTCDateTime", "partial_index", "Database", "is_postgres"]
