"""Test clocks."""

from __future__ import annotations

from typing import Literal

from creditflow.api.schemas.common import InstantIn, InstantOut, Request, Resource


class TestClockCreate(Request):
    frozen_time: InstantIn


class TestClockAdvance(Request):
    frozen_time: InstantIn


class TestClockRead(Resource):
    __test__ = False

    object: Literal["test_clock"] = "test_clock"
    frozen_time: InstantOut
