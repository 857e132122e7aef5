"""A job process that dies mid-call (killed by the memory guard, a crash in a native library)
leaves its agent in the room until LiveKit's peer connection times out (about 20 s of silence).
The worker sees the death at once: it removes that agent from the room, and LiveKit's
participant_left webhook has the control plane send another, which resumes the conversation
(`worker/carry.py`) without greeting again. `worker/peer_watch.py` does the same for the agents
of a whole worker that died."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from livekit import api

from worker.settings import WorkerEnv

logger = logging.getLogger(__name__)


async def remove_agent(env: WorkerEnv, room: str, identity: str, log: dict[str, Any]) -> bool:
    """Removes a dead agent's participant; True when it was there and is gone now."""
    secret = env.livekit_api_secret.get_secret_value() if env.livekit_api_secret else None
    try:
        async with api.LiveKitAPI(env.livekit_url, env.livekit_api_key, secret) as lk:
            await lk.room.remove_participant(
                api.RoomParticipantIdentity(room=room, identity=identity)
            )
    except api.TwirpError as exc:
        if exc.code != api.TwirpErrorCode.NOT_FOUND:  # not found: already gone
            logger.error("dead agent not removed", extra=log | {"why": exc.code})
        return False
    except Exception as exc:
        logger.error("dead agent not removed", extra=log | {"why": repr(exc)})
        return False
    return True


class LostJobs:
    def __init__(self, server: Any, env: WorkerEnv) -> None:
        self._server = server
        self._env = env
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, *_: Any) -> None:
        # livekit-agents 1.8.9 has no public hook for a dead job process; its process pool
        # emits this for every process that ends.
        self._server._proc_pool.on("process_closed", self._closed)

    def _closed(self, proc: Any) -> None:
        info = proc.running_job
        exit_code = getattr(proc, "exitcode", None)
        if info is None or exit_code == 0 or self._server.draining:
            return  # an idle process, a job that ended, or the worker shutting down
        task = asyncio.create_task(self._remove(info, exit_code))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _remove(self, info: Any, exit_code: int | None) -> None:
        room, identity = info.job.room.name, info.accept_arguments.identity
        log = {"room": room, "job_id": info.job.id, "exit_code": exit_code}
        if await remove_agent(self._env, room, identity, log):
            logger.warning(
                "job process died mid-call: its agent was removed from the room", extra=log
            )
