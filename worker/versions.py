"""The agent version a job names, read from the sessions table once per process (versions never change).

The worker reads a version item's content only (GetItem on `AGENT#` keys, projected to
`spec_json`); a version published after the worker started is read on its first call. An inbound
phone call's rule names only the agent: the version is the one its session records.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voice.agents import VERSION_PROJECTION, AgentSpec, version_key
from voice.metadata import DispatchMetadata
from voice.table import SESSION_VERSION_PROJECTION, session_key
from worker.gate import UNKNOWN_GRACE, dynamodb_client
from worker.settings import WorkerEnv

if TYPE_CHECKING:
    from loguru import Logger


class VersionMissing(LookupError):
    """The table has no such version (it is never deleted, so the dispatch named a wrong one)."""


class VersionReader:
    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table
        self._cache: dict[tuple[str, int], AgentSpec] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: WorkerEnv) -> VersionReader | None:
        """None when the worker runs without a control plane (no SESSIONS_TABLE)."""
        return cls(dynamodb_client(), env.sessions_table) if env.sessions_table else None

    def cached(self, agent_id: str, version: int) -> AgentSpec | None:
        return self._cache.get((agent_id, version))

    def read(self, agent_id: str, version: int) -> AgentSpec:
        """The version's content (blocking: run it off the event loop unless `cached`)."""
        spec = self.cached(agent_id, version)
        if spec is not None:
            return spec
        resp = self._client.get_item(
            TableName=self._table,
            Key=version_key(agent_id, version),
            ProjectionExpression=VERSION_PROJECTION,
            ConsistentRead=True,
        )
        item = resp.get("Item")
        if item is None:
            raise VersionMissing(f"agent {agent_id} has no version {version} in the table")
        spec = AgentSpec.model_validate_json(item["spec_json"]["S"])
        with self._lock:
            self._cache[(agent_id, version)] = spec
        return spec

    def session_version(self, session_id: str) -> int | None:
        """The agent version an inbound call's session records (blocking). Its webhook may trail
        the dispatch, so an unknown session is looked for again for `UNKNOWN_GRACE`."""
        deadline = time.monotonic() + UNKNOWN_GRACE.total_seconds()
        while True:
            resp = self._client.get_item(
                TableName=self._table,
                Key=session_key(session_id),
                ProjectionExpression=SESSION_VERSION_PROJECTION,
                ConsistentRead=True,
            )
            item = resp.get("Item")
            if item is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.25)
        if not item or "agent_version" not in item:
            return None
        return int(item["agent_version"]["N"])


@dataclass(frozen=True)
class JobVersion:
    """The agent version a job runs."""

    agent_id: str
    version: int
    spec: AgentSpec


def named_version(raw_metadata: str | None) -> tuple[str, int | None] | None:
    """The (agent id, version) a job's dispatch names, if it names an agent; the version is None
    for an inbound phone call, whose session says it."""
    try:
        dispatch = DispatchMetadata.parse(raw_metadata)
    except ValueError:
        return None  # plan_call reports unusable metadata
    if dispatch.agent_id is None:
        return None
    return dispatch.agent_id, dispatch.agent_version


async def version_for_job(
    raw_metadata: str | None, session_id: str, reader: VersionReader | None, log: Logger
) -> JobVersion | None:
    """The version the job names, or None for the config file's agent.

    A version that cannot be read leaves the call to the config file's agent (a caller hears an
    agent either way), logged as an error so the gap shows.
    """
    named = named_version(raw_metadata)
    if named is None:
        return None
    agent_id, version = named
    if reader is None:
        log.error("job names an agent version but the worker has no table to read it from")
        return None
    try:
        if version is None:
            version = await asyncio.to_thread(reader.session_version, session_id)
        if version is None:
            log.error("the session names no agent version; the config file's agent serves")
            return None
        spec = reader.cached(agent_id, version)
        if spec is None:
            spec = await asyncio.to_thread(reader.read, agent_id, version)
    except Exception as exc:
        log.error(
            "could not read the agent version; the config file's agent serves this call",
            agent_id=agent_id,
            agent_version=version,
            error=repr(exc),
        )
        return None
    return JobVersion(agent_id=agent_id, version=version, spec=spec)
