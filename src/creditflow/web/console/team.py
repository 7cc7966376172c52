"""Console users, managed by admins; every change is audited."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request

from creditflow.kit.errors import CreditflowError, InvalidRequest
from creditflow.support import service as support
from creditflow.web.console.pages import ConsolePages, sentence


def add_routes(router: APIRouter, pages: ConsolePages) -> None:
    ctx = pages.ctx

    # --- console users (admin) -------------------------------------------------------------

    @router.get("/console/users")
    @pages.guarded
    async def users(request: Request):
        session, staff = pages.signed_in(request, admin=True)
        with ctx.db.transaction(readonly=True) as db:
            people = support.list_support_users(db)
        return pages.render(request, session, staff, "console/users.html",
                            {"title": "Team", "people": people, "nav": "users"})

    @router.post("/console/users")
    @pages.guarded
    async def add_user(request: Request):
        session, staff = pages.signed_in(request, admin=True)
        form = await pages.form_of(request, session)
        username, role = form.get("username", ""), form.get("role", "support")
        try:
            def create():
                with ctx.db.transaction() as db:
                    return support.create_support_user(db, username=username, password=form.get("password", ""),
                                                       role=role, now=ctx.clock.now())
            pages.audited(staff, action="console.user_create", summary=f"Added console user {username} ({role})",
                          reason=form.get("reason"), customer_id=None, work=create)
        except CreditflowError as exc:
            return pages.go(request, session, "/console/users", "error", sentence(exc))
        return pages.go(request, session, "/console/users", "success", f"Added {username.strip()} as {role}.")

    @router.post("/console/users/{user_id}/disable")
    @pages.guarded
    async def disable_user(request: Request, user_id: str):
        session, staff = pages.signed_in(request, admin=True)
        form = await pages.form_of(request, session)
        try:
            if user_id == staff.id:
                raise InvalidRequest("you can't disable your own account")

            with ctx.db.transaction(readonly=True) as db:
                person = next((p for p in support.list_support_users(db) if p.id == user_id), None)
            if person is None:
                raise InvalidRequest("there is no such user")

            def disable():
                with ctx.db.transaction() as db:
                    return support.set_user_disabled(db, user_id, disabled=True, now=ctx.clock.now()).username
            pages.audited(staff, action="console.user_disable",
                          summary=f"Disabled console user {person.username} ({person.role})",
                          reason=form.get("reason"), customer_id=None, work=disable, details={"user": user_id})
        except CreditflowError as exc:
            return pages.go(request, session, "/console/users", "error", sentence(exc))
        return pages.go(request, session, "/console/users", "success", "The user can no longer sign in.")
