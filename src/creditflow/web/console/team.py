"""Console users, managed by admins; every change is audited."""

from __future__ import annotations

from fastapi import APIRouter

from creditflow.support import service as support
from creditflow.kit.errors import CreditflowError, InvalidRequest
from creditflow.web.console.pages import AdminSignedIn, PostedForm, sentence
from creditflow.web.rendering import HTMLErrorRoute

router = APIRouter(route_class=HTMLErrorRoute, include_in_schema=False)
USERS = "/console/users"


@router.get("/console/users")
def users(visit: AdminSignedIn):
    with visit.ctx.db.transaction(readonly=True) as db:
        people = support.list_support_users(db)
    return visit.render("console/users.html", {"title": "Team", "people": people, "nav": "users"})


@router.post("/console/users")
def add_user(visit: AdminSignedIn, form: PostedForm):
    ctx = visit.ctx
    username, role = form.get("username", ""), form.get("role", "support")

    def create():
        with ctx.db.transaction() as db:
            return support.create_support_user(db, username=username, password=form.get("password", ""),
                                               role=role, now=ctx.clock.now())

    try:
        visit.audited(action="console.user_create", summary=f"Add console user {username} ({role})",
                      done=f"Added console user {username} ({role})",
                      reason=form.get("reason"), customer_id=None, work=create)
    except CreditflowError as exc:
        return visit.go(USERS, "error", sentence(exc))
    return visit.go(USERS, "success", f"Added {username.strip()} as {role}.")


@router.post("/console/users/{user_id}/disable")
def disable_user(visit: AdminSignedIn, form: PostedForm, user_id: str):
    ctx = visit.ctx

    def disable():
        with ctx.db.transaction() as db:
            return support.set_user_disabled(db, user_id, disabled=True, now=ctx.clock.now()).username

    try:
        if user_id == visit.staff.id:
            raise InvalidRequest("you can't disable your own account")
        with ctx.db.transaction(readonly=True) as db:
            person = next((p for p in support.list_support_users(db) if p.id == user_id), None)
        if person is None:
            raise InvalidRequest("there is no such user")
        visit.audited(action="console.user_disable", summary=f"Disable console user {person.username} ({person.role})",
                      done=f"Disabled console user {person.username} ({person.role})",
                      reason=form.get("reason"), customer_id=None, work=disable, details={"user": user_id})
    except CreditflowError as exc:
        return visit.go(USERS, "error", sentence(exc))
    return visit.go(USERS, "success", "The user can no longer sign in.")
