"""Capacity is a promise: N slots take N calls, vanished rooms free theirs, bursts get agents."""

from __future__ import annotations

import asyncio

import pytest
from livekit import api

from tests.integration.conftest import StartWorker
from tests.support.livekit import LiveKitServer
from tests.support.worker import Worker, agent_in_room, dispatch, wait_for_jobs

pytestmark = pytest.mark.livekit

# Bounded waits, never the assertion: a loaded machine only makes them slower.
AGENT_TIMEOUT = 30.0


async def warm_worker(start_worker: StartWorker, max_jobs: int) -> Worker:
    """A registered worker whose pool of `max_jobs` processes has finished prewarm."""
    worker = start_worker("start", worker_yaml=f"max_jobs: {max_jobs}")
    await worker.wait_for_log("registered worker", timeout=60)
    await worker.wait_for_warm_pool(max_jobs)
    return worker


async def test_a_worker_with_max_jobs_n_takes_n_calls_and_the_next_goes_to_another_worker(
    livekit: LiveKitServer, start_worker: StartWorker
) -> None:
    # max_jobs 4 with the reference's load_threshold 0.7 used to report full at 3 jobs.
    first = start_worker("start", worker_yaml="max_jobs: 4, load_threshold: 0.7")
    await first.wait_for_log("registered worker", timeout=60)
    async with livekit.api() as lk:
        rooms = [(await dispatch(lk))[1] for _ in range(4)]
        served = await asyncio.gather(*(agent_in_room(lk, r, AGENT_TIMEOUT) for r in rooms))
        assert served == [True] * 4, first.logs()[-3000:]
        assert await wait_for_jobs(first, 4, timeout=10) == 4
        await first.wait_for_log("worker is at full capacity", timeout=10)

        second = start_worker("start", worker_yaml="max_jobs: 4")
        await second.wait_for_log("registered worker", timeout=60)
        _, fifth = await dispatch(lk)
        assert await agent_in_room(lk, fifth, AGENT_TIMEOUT), second.logs()[-3000:]
        assert await wait_for_jobs(second, 1, timeout=10) == 1
        assert await first.active_jobs() == 4
        assert await second.wait_for_room(fifth)
        assert fifth not in first.rooms_joined()

        # A call ending frees its slot on the full worker.
        await lk.room.delete_room(api.DeleteRoomRequest(room=rooms[0]))
        assert await wait_for_jobs(first, 3, timeout=AGENT_TIMEOUT) == 3
        for room in [*rooms[1:], fifth]:
            await lk.room.delete_room(api.DeleteRoomRequest(room=room))


async def test_rooms_deleted_as_soon_as_the_agent_appears_free_their_slots_for_the_next_calls(
    livekit: LiveKitServer, start_worker: StartWorker
) -> None:
    """The hang-up-at-once scenario: 8 dispatches 1.5 s apart, each room deleted on sight."""
    worker = await warm_worker(start_worker, max_jobs=4)

    async with livekit.api() as lk:

        async def hang_up_at_once(delay: float) -> bool:
            await asyncio.sleep(delay)
            _, room = await dispatch(lk)
            served = await agent_in_room(lk, room, AGENT_TIMEOUT)
            await lk.room.delete_room(api.DeleteRoomRequest(room=room))
            return served

        served = await asyncio.gather(*(hang_up_at_once(1.5 * i) for i in range(8)))
    assert served == [True] * 8, worker.logs()[-4000:]
    assert await wait_for_jobs(worker, 0, timeout=AGENT_TIMEOUT) == 0
    assert "entrypoint did not exit in time" not in worker.logs()


async def test_a_burst_of_max_jobs_dispatches_within_a_second_gets_an_agent_each(
    livekit: LiveKitServer, start_worker: StartWorker
) -> None:
    worker = await warm_worker(start_worker, max_jobs=4)
    async with livekit.api() as lk:
        rooms = [room for _, room in await asyncio.gather(*(dispatch(lk) for _ in range(4)))]
        served = await asyncio.gather(*(agent_in_room(lk, r, AGENT_TIMEOUT) for r in rooms))
        assert served == [True] * 4, worker.logs()[-4000:]
        for room in rooms:
            await lk.room.delete_room(api.DeleteRoomRequest(room=room))
    assert await wait_for_jobs(worker, 0, timeout=AGENT_TIMEOUT) == 0
