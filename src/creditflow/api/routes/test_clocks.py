from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, status

from creditflow.api.deps import AppSettings, Caller, Ctx
from creditflow.api.errors import errors
from creditflow.api.schemas.test_clocks import TestClockAdvance, TestClockCreate, TestClockRead
from creditflow.customer.service import create_test_clock, get_test_clock
from creditflow.kit.errors import InvalidRequest, NotFound
from creditflow.worker.testclock import advance_test_clock


async def enabled(settings: AppSettings) -> None:
    """Test clocks exist only with CREDITFLOW_TEST_CLOCKS=1; otherwise every route answers 404."""
    if not settings.test_clocks:
        raise NotFound("test clocks are disabled (CREDITFLOW_TEST_CLOCKS=1 enables them)")


router = APIRouter(tags=["test clocks"], dependencies=[Depends(enabled)])
MAX_ADVANCE = timedelta(days=5 * 366)


@router.post("/test_clocks", status_code=status.HTTP_201_CREATED, response_model=TestClockRead,
             responses=errors(404, 409))
def create(body: TestClockCreate, ctx: Ctx, _: Caller):
    with ctx.db.transaction() as session:
        return TestClockRead.of(create_test_clock(session, body.frozen_time, now=ctx.clock.now()))


@router.get("/test_clocks/{clock_id}", response_model=TestClockRead, responses=errors(404))
def read(clock_id: str, ctx: Ctx, _: Caller):
    with ctx.db.transaction(readonly=True) as session:
        return TestClockRead.of(get_test_clock(session, clock_id))


@router.post("/test_clocks/{clock_id}/advance", response_model=TestClockRead, responses=errors(404, 409))
def advance(clock_id: str, body: TestClockAdvance, ctx: Ctx, _: Caller):
    """Runs every piece of work due up to `frozen_time` for the clock's customers, in time order.
    One call moves the clock at most 5 years (each month of each subscription is work to run)."""
    with ctx.db.transaction(readonly=True) as session:
        current = get_test_clock(session, clock_id).frozen_time
    if body.frozen_time > current + MAX_ADVANCE:
        raise InvalidRequest("a test clock moves at most 5 years per call", param="frozen_time")
    return TestClockRead.of(advance_test_clock(ctx, clock_id, body.frozen_time))
