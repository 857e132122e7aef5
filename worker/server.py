"""Builds the `AgentServer` from `voice.realtime.worker` (env overrides already applied)."""

from __future__ import annotations

import os
from typing import Any

from livekit.agents import AgentServer

from voice.config.schema import VoiceConfig, WorkerSettings
from worker.call import entrypoint, prewarm
from worker.emf import EmfEmitter
from worker.fleet import FleetMonitor, JobSlots, TaskProtection
from worker.heartbeat import MIN_VALID_SECONDS, CapacityReporter, HeartbeatWriter, fleet_client
from worker.job_loss import LostJobs
from worker.peer_watch import FleetTable, PeerWatch
from worker.reconnect import FastReconnect
from worker.settings import WorkerEnv

PRELOAD_ENV = "LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE"


def idle_processes(settings: WorkerSettings) -> int:
    """Warm processes kept ready; by default one per slot, so a burst never waits on a start.

    The library shrinks the pool to the free slots as jobs run, so this costs no memory beyond
    what `max_jobs` live calls need anyway.
    """
    if settings.num_idle_processes is None:
        return settings.max_jobs
    return settings.num_idle_processes


def server_options(settings: WorkerSettings, env: WorkerEnv) -> dict[str, Any]:
    """`AgentServer` keyword arguments; explicit values, so dev mode defaults never apply."""
    secret = env.livekit_api_secret
    slots = JobSlots.of(settings.max_jobs, settings.load_threshold)
    return {
        "ws_url": env.livekit_url,
        "api_key": env.livekit_api_key,
        "api_secret": secret.get_secret_value() if secret else None,
        "num_idle_processes": idle_processes(settings),
        "port": settings.port,
        # All interfaces: the container health check and 127.0.0.1 both reach it.
        "host": "0.0.0.0",
        "job_memory_warn_mb": settings.job_memory_warn_mb,
        "job_memory_limit_mb": settings.job_memory_limit_mb,
        "load_threshold": slots.threshold,
        "drain_timeout": settings.drain_timeout,
        "initialize_process_timeout": settings.initialize_process_timeout,
        "load_fnc": slots.load,
    }


class VoiceAgentServer(AgentServer):
    """An `AgentServer` that also owns the fleet monitor, so protection is released on close."""

    fleet: FleetMonitor | None = None
    capacity: CapacityReporter | None = None
    peers: PeerWatch | None = None

    async def aclose(self) -> None:
        if self.peers is not None:
            await self.peers.aclose()
        if self.capacity is not None:
            await self.capacity.aclose()
        if self.fleet is not None:
            await self.fleet.aclose()
        await super().aclose()


def build_server(config: VoiceConfig, env: WorkerEnv) -> VoiceAgentServer:
    settings = config.realtime.worker
    # Read by the forkserver when it starts: without this every process carries the ~250 MB
    # end-of-turn model. Only a config that asks for it (or an explicit env) preloads it.
    if settings.preload_turn_detector:
        os.environ[PRELOAD_ENV] = "1"
    else:
        os.environ.setdefault(PRELOAD_ENV, "0")

    server = VoiceAgentServer(setup_fnc=prewarm, **server_options(settings, env))
    # An agent name means explicit dispatch only: rooms get this worker when the API asks.
    server.rtc_session(entrypoint, agent_name=settings.agent_name)

    protection = TaskProtection(env.ecs_agent_uri) if env.ecs_agent_uri else None
    # Long enough for the longest call; renewed while jobs run.
    protect_minutes = max(10, config.realtime.limits.max_session_duration // 60 + 10)
    monitor = FleetMonitor(
        server,
        emf=EmfEmitter(env.metrics_namespace),
        protection=protection,
        protect_minutes=protect_minutes,
    )
    server.on("worker_started", monitor.start)
    server.fleet = monitor
    # One client for the heartbeats and the peer watch, apart from the session check's: one
    # short attempt per call, so a stalled table is handed no backlog of retries.
    client = fleet_client() if env.sessions_table else None
    server.capacity = capacity_reporter(server, settings, env, client)
    server.on("worker_started", server.capacity.start)
    server.on("worker_registered", server.capacity.registered)
    server.on("worker_started", LostJobs(server, env).start)
    server.on("worker_started", FastReconnect(server).start)
    if env.sessions_table:
        server.peers = PeerWatch(
            server,
            server.capacity,
            FleetTable(client, env.sessions_table),
            env,
            interval=settings.heartbeat_interval,
        )
        server.on("worker_started", server.peers.start)
    return server


def capacity_reporter(
    server: VoiceAgentServer, settings: WorkerSettings, env: WorkerEnv, client: Any = None
) -> CapacityReporter:
    """Heartbeats to the sessions table when there is one; FreeSlots / TotalSlots EMF always."""
    writer = None
    if env.sessions_table:
        writer = HeartbeatWriter(
            client or fleet_client(),
            env.sessions_table,
            settings.agent_name,
            settings.heartbeat_interval,
            min_valid=MIN_VALID_SECONDS,
        )
    return CapacityReporter(
        server,
        writer,
        # JobSlots makes the worker full at exactly max_jobs: every one of them is a free slot.
        total=settings.max_jobs,
        interval=settings.heartbeat_interval,
        emf=EmfEmitter(env.metrics_namespace),
    )
