from __future__ import annotations

from fastapi import APIRouter, Depends, status

from creditflow.api.deps import AppSettings, Caller, Ctx
from creditflow.api.errors import errors
from creditflow.api.schemas.misc import TestClockAdvance, TestClockCreate, TestClockRead
from creditflow.customer.service import create_test_clock, get_test_clock
from creditflow.kit.errors import NotFound
from creditflow.worker.testclock import advance_test_clock


def enabled(settings: AppSettings) -> None:
    """Test clocks exist only with CREDITFLOW_TEST_CLOCKS=1; otherwise every route answers 404."""
    if not settings.test_clocks:
        raise NotFound("test clocks are disabled (CREDITFLOW_TEST_CLOCKS=1 enables them)")


router = APIRouter(tags=["test clocks"], dependencies=[Depends(enabled)])


def _read(clock) -> TestClockRead:
    return TestClockRead(id=clock.id, frozen_time=clock.frozen_time)


@router.post("/test_clocks", status_code=status.HTTP_201_CREATED, response_model=TestClockRead,
             responses=errors(404, 409))
def create(body: TestClockCreate, ctx: Ctx, _: Caller):
    with ctx.db.transaction() as session:
        return _read(create_test_clock(session, body.frozen_time, now=ctx.clock.now()))


@router.get("/test_clocks/{clock_id}", response_model=TestClockRead, responses=errors(404))
def read(clock_id: str, ctx: Ctx, _: Caller):
    with ctx.db.transaction(readonly=True) as session:
        return _read(get_test_clock(session, clock_id))


@router.post("/test_clocks/{clock_id}/advance", response_model=TestClockRead, responses=errors(404, 409))
def advance(clock_id: str, body: TestClockAdvance, ctx: Ctx, _: Caller):
    """Runs every piece of work due up to `frozen_time` for the clock's customers, in time order."""
    return _read(advance_test_clock(ctx, clock_id, body.frozen_time))
