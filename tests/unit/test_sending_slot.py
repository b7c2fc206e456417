"""SendingSlot: a sending slot is held only while a request is made, and never by a job whose
lease could run out mid-request."""

import asyncio

import pytest

from app.scheduling.scheduler import LeaseTooShort, SendingSlot


def test_a_slot_is_held_inside_and_given_back_after():
    async def run() -> list[bool]:
        semaphore = asyncio.Semaphore(1)
        seen = []
        async with SendingSlot(semaphore, lambda: True):
            seen.append(semaphore.locked())
        seen.append(semaphore.locked())
        return seen

    assert asyncio.run(run()) == [True, False]


def test_a_job_whose_lease_runs_short_is_refused_and_holds_nothing():
    async def run() -> bool:
        semaphore = asyncio.Semaphore(1)
        with pytest.raises(LeaseTooShort):
            async with SendingSlot(semaphore, lambda: False):
                pytest.fail("entered without the lease to cover the request")
        return semaphore.locked()

    assert asyncio.run(run()) is False


def test_the_lease_is_judged_when_the_slot_is_free_not_when_asked():
    async def run() -> list[str]:
        semaphore = asyncio.Semaphore(1)
        events = []
        lease = {"holds": True}

        async def first() -> None:
            async with SendingSlot(semaphore, lambda: True):
                events.append("first in")
                await asyncio.sleep(0)
                lease["holds"] = False  # the second job's lease runs short while it waits
            events.append("first out")

        async def second() -> None:
            try:
                async with SendingSlot(semaphore, lambda: lease["holds"]):
                    events.append("second in")
            except LeaseTooShort:
                events.append("second refused")

        await asyncio.gather(first(), second())
        events.append(f"locked: {semaphore.locked()}")
        return events

    assert asyncio.run(run()) == ["first in", "first out", "second refused", "locked: False"]
