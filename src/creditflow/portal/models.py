from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from creditflow.kit.db import Base, UTCDateTime


class PortalSession(Base):
    """A signed link for one customer, valid once and for a few minutes."""

    __tablename__ = "portal_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    return_url: Mapped[str | None] = mapped_column(String(2048))
    # A team member's link: the page shows the team's pool and the member's own usage, and no
    # billing actions (see team.service). None: the customer's (the team owner's) own page.
    member_id: Mapped[str | None] = mapped_column(String(40))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
