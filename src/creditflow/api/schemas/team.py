"""Teams: members and their limits, and auto top-up settings."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool, StrictInt

from creditflow.api.schemas.common import CreditsIn, CreditsOut, Id, InstantOut, Read, Resource, Request


class MemberCreate(Request):
    email: str = Field(max_length=320, description="Where the invitation goes (checked: name@example.com)")
    external_id: str | None = Field(default=None, min_length=1, max_length=255,
                                    description="The host app's id of the person, if known already")
    role: Literal["admin", "member"] = "member"


class MemberAccept(Request):
    external_id: str = Field(min_length=1, max_length=255, description="The host app's id of the person joining")


class MemberUpdate(Request):
    """Only the fields sent change; `monthly_limit: null` removes the limit."""

    role: Literal["admin", "member"] | None = None
    monthly_limit: CreditsIn | None = Field(default=None, description="Credits a month; null: no limit")
    status: Literal["active", "suspended"] | None = Field(default=None,
                                                          description="Suspend a member, or make them active again")


class MemberRead(Resource):
    object: Literal["member"] = "member"
    customer: str = Field(description="The team: its owner's customer id")
    email: str
    external_id: str | None
    role: Literal["owner", "admin", "member"]
    status: Literal["invited", "active", "suspended", "removed", "revoked"]
    monthly_limit: CreditsOut | None
    used_this_month: CreditsOut = Field(description="Spent since the team's last monthly boundary")
    invite_url: str | None = Field(default=None, description="The one-time invitation link: only in the answer "
                                                             "that created the invitation")
    invite_expires_at: InstantOut | None
    suspended_reason: str | None = Field(description="ended (the subscription ended), downgrade, or admin")
    created_at: InstantOut

    @classmethod
    def of(cls, member, used, invite_url: str | None = None) -> "MemberRead":
        return cls(id=member.id, customer=member.customer_id, email=member.email, external_id=member.external_id,
                   role=member.role, status=member.status, monthly_limit=member.monthly_limit,
                   used_this_month=used, invite_url=invite_url,
                   invite_expires_at=member.invite_expires_at if member.status == "invited" else None,
                   suspended_reason=member.suspended_reason if member.status == "suspended" else None,
                   created_at=member.created_at)


class MemberList(Read):
    object: Literal["list"] = "list"
    data: list[MemberRead]
    has_more: bool = False
    seats_used: int = Field(description="The owner, active members and invitations not yet expired")
    seat_limit: int = Field(description="The seats of the team's plan (Free: 1)")


class AutoTopUpSet(Request):
    enabled: StrictBool
    threshold: CreditsIn = Field(description="Buy when the available credits fall below this")
    bundle: Id = Field(description="The bundle to buy")
    monthly_max: StrictInt = Field(ge=1, le=100, description="At most this many purchases a monthly period")


class AutoTopUpRead(Read):
    object: Literal["auto_top_up"] = "auto_top_up"
    customer: str
    enabled: bool
    threshold: CreditsOut
    bundle: str
    monthly_max: int
    purchases_this_month: int
    in_flight: bool
    last_failure: str | None

    @classmethod
    def of(cls, settings, purchases: int) -> "AutoTopUpRead":
        return cls(customer=settings.customer_id, enabled=settings.enabled, threshold=settings.threshold,
                   bundle=settings.bundle, monthly_max=settings.monthly_max, purchases_this_month=purchases,
                   in_flight=settings.in_flight_since is not None, last_failure=settings.last_failure)
