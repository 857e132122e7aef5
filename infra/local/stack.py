"""The whole system on one machine: AWS emulator, LiveKit server, API, worker and the reaper timer.

`make dev` runs it in the foreground; the end-to-end tests start the same stack on free ports.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from functions.settings import DEV_LIVEKIT_KEY, DEV_LIVEKIT_SECRET
from infra.local.aws import LOCAL_TABLE, local_aws_env, local_client
from infra.local.keys import seed_api_keys
from infra.local.livekit import find_livekit_server, livekit_yaml, node_id_from_log, node_region
from infra.local.paths import CONFIG_FILE, ROOT, STATE_DIR
from worker.heartbeat import FIRST_HEARTBEAT

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_ready(
    name: str, proc: subprocess.Popen[bytes], log: Path, probe: str, timeout: float
) -> None:
    """Waits until `probe` (`tcp:PORT` or an http URL answering 200) answers, or `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")
        try:
            if probe.startswith("tcp:"):
                with socket.create_connection((HOST, int(probe[4:])), timeout=0.3):
                    return
            else:
                with urllib.request.urlopen(probe, timeout=1) as resp:
                    if resp.status == 200:
                        return
        except OSError:
            pass
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"{name} did not become ready within {timeout:.0f} s:\n{tail}")


# The monitor's canary judging, run beside the reaper: the local stack has no scheduled monitor.
_JUDGE_CANARIES = (
    "from functions.background.monitor import judge_canaries; "
    "print({'rolled_back': judge_canaries()})"
)


@dataclass
class StackOptions:
    api_port: int = 8000
    livekit_port: int = 7880
    livekit_tcp_port: int = 7881
    livekit_udp_port: int = 7882
    moto_port: int = 4566
    worker_health_port: int = 8081
    run_dir: Path = STATE_DIR / "run"
    config_uri: str = str(CONFIG_FILE)
    api_keys: str | None = None  # VOICE_API_KEYS format; None = one dev key
    start_worker: bool = True
    reaper_interval: float = 30.0
    redis_address: str | None = None  # host:port; LiveKit's SIP service needs it (infra.local.sip)
    # LiveKit nodes sharing `redis_address` (more than one needs it); node 1 has the ports above.
    livekit_nodes: int = 1
    # (port, tcp_port, udp_port) of nodes 2..N; missing ones: node 1's ports + 10 per node.
    livekit_extra_ports: list[tuple[int, int, int]] = field(default_factory=list)
    # With several nodes: the load balancer in front of them (infra.local.balancer), which the API,
    # the worker and the SIP service dial, as they would dial one in production.
    livekit_balancer_port: int = 7870
    # Extra environment for the worker (OPENAI_BASE_URL, OPENAI_API_KEY, ...).
    worker_env: dict[str, str] = field(default_factory=dict)
    # Extra environment for every piece (VOICE_WEBHOOK_SECRET, WEBHOOK_RETRY_BASE_SECONDS, ...).
    extra_env: dict[str, str] = field(default_factory=dict)
    # The LiveKit key pair the server, API and worker share (tests set a recognisable secret).
    livekit_api_key: str = DEV_LIVEKIT_KEY
    livekit_api_secret: str = DEV_LIVEKIT_SECRET
    # Where LiveKit sends its webhooks (default: the API's route); tests put a relay in between.
    livekit_webhook_url: str | None = None

    @classmethod
    def on_free_ports(cls, run_dir: Path, **kwargs: object) -> StackOptions:
        nodes = int(kwargs.get("livekit_nodes", 1))  # type: ignore[call-overload]
        kwargs.setdefault(
            "livekit_extra_ports",
            [(free_port(), free_port(), free_port()) for _ in range(nodes - 1)],
        )
        kwargs.setdefault("livekit_balancer_port", free_port())
        return cls(
            api_port=free_port(),
            livekit_port=free_port(),
            livekit_tcp_port=free_port(),
            livekit_udp_port=free_port(),
            moto_port=free_port(),
            worker_health_port=free_port(),
            run_dir=run_dir,
            **kwargs,  # type: ignore[arg-type]
        )


class LocalStack:
    def __init__(self, options: StackOptions) -> None:
        self.opts = options
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.api_keys: list[tuple[str, str]] = []
        self._reaper_stop = threading.Event()
        self._reaper: threading.Thread | None = None
        self.opts.run_dir.mkdir(parents=True, exist_ok=True)
        # Every piece listens on loopback only.
        self.moto_url = f"http://{HOST}:{options.moto_port}"
        self.api_url = f"http://{HOST}:{options.api_port}"
        # What the API, the worker and the SIP service dial: the node, or the nodes' balancer.
        lk_port = (
            options.livekit_balancer_port if options.livekit_nodes > 1 else options.livekit_port
        )
        self.livekit_url = f"ws://{HOST}:{lk_port}"
        self.playground_url = f"{self.api_url}/voice/realtime/playground"
        self.console_url = f"{self.api_url}/voice/realtime/console"
        self.webhook_url = f"{self.api_url}/voice/realtime/livekit/webhook"

    def log_path(self, name: str) -> Path:
        return self.opts.run_dir / f"{name}.log"

    # -- environment --------------------------------------------------------------------------

    def base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(local_aws_env(self.moto_url))
        env.update(
            {
                "ENVIRONMENT": "local",
                "LIVEKIT_URL": self.livekit_url,
                "LIVEKIT_API_KEY": self.opts.livekit_api_key,
                "LIVEKIT_API_SECRET": self.opts.livekit_api_secret,
                "VOICE_CONFIG_URI": self.opts.config_uri,
                "VOICE_CONFIG_TTL_SECONDS": "5",
                "LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE": "0",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.opts.extra_env)
        return env

    def worker_env(self) -> dict[str, str]:
        env = self.base_env()
        env["OPENAGENTS_LIVEKIT_WORKER_PORT"] = str(self.opts.worker_health_port)
        env["REPORTS_DIR"] = str(self.opts.run_dir / "reports")
        env.update(self.opts.worker_env)
        return env

    # -- processes ----------------------------------------------------------------------------

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.log_path(name).open("ab")
        # A session of its own, so stop() can end the process and every child it started.
        proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs[name] = proc
        return proc

    def _wait(self, name: str, probe: str, timeout: float) -> None:
        wait_ready(name, self.procs[name], self.log_path(name), probe, timeout)

    def start_moto(self) -> None:
        self._spawn(
            "aws",
            [sys.executable, "-m", "infra.local.aws", "--port", str(self.opts.moto_port)],
            self.base_env(),
        )
        self._wait("aws", f"tcp:{self.opts.moto_port}", 30)
        # The emulator is up when the port answers; the bootstrap that follows takes a moment.
        self._wait_for_table()

    def _wait_for_table(self) -> None:
        ddb = local_client("dynamodb", self.moto_url)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if LOCAL_TABLE in ddb.list_tables()["TableNames"]:
                    return
            except Exception:  # the emulator may still be starting
                pass
            time.sleep(0.2)
        raise RuntimeError("the AWS emulator did not create the sessions table")

    def livekit_ports(self, node: int = 0) -> tuple[int, int, int]:
        """(port, tcp_port, udp_port) of LiveKit node `node` (0-based)."""
        o = self.opts
        if node == 0:
            return o.livekit_port, o.livekit_tcp_port, o.livekit_udp_port
        if node <= len(o.livekit_extra_ports):
            return o.livekit_extra_ports[node - 1]
        return (
            o.livekit_port + 10 * node,
            o.livekit_tcp_port + 10 * node,
            o.livekit_udp_port + 10 * node,
        )

    @property
    def livekit_urls(self) -> list[str]:
        """Every LiveKit node's own URL; a client joining through one has its new room placed there."""
        return [f"ws://{HOST}:{self.livekit_ports(i)[0]}" for i in range(self.opts.livekit_nodes)]

    @staticmethod
    def livekit_name(node: int = 0) -> str:
        """The process (and log) name of LiveKit node `node`: livekit, livekit-2, ..."""
        return "livekit" if node == 0 else f"livekit-{node + 1}"

    def livekit_node_id(self, node: int = 0) -> str | None:
        """The id LiveKit gave node `node` on its last start (LiveKit's router maps rooms to it)."""
        return node_id_from_log(self.log_path(self.livekit_name(node)))

    def livekit_config(self, node: int = 0) -> Path:
        path = self.opts.run_dir / f"{self.livekit_name(node)}.yaml"
        port, tcp_port, udp_port = self.livekit_ports(node)
        several = self.opts.livekit_nodes > 1
        path.write_text(
            livekit_yaml(
                port,
                tcp_port,
                udp_port,
                webhook_url=self.opts.livekit_webhook_url or self.webhook_url,
                api_key=self.opts.livekit_api_key,
                api_secret=self.opts.livekit_api_secret,
                redis_address=self.opts.redis_address,
                region=node_region(node) if several else None,
                regions=[node_region(i) for i in range(self.opts.livekit_nodes)] if several else (),
            )
        )
        return path

    def start_livekit(self) -> None:
        """Starts every LiveKit node that is not running (all of them on the first call)."""
        binary = find_livekit_server()
        if binary is None:
            raise RuntimeError("no livekit-server: run `make livekit-server` or put one on PATH")
        if self.opts.livekit_nodes > 1 and not self.opts.redis_address:
            raise RuntimeError(
                f"{self.opts.livekit_nodes} LiveKit nodes need a Redis they share: "
                "set StackOptions.redis_address (host:port), or run one node"
            )
        for node in range(self.opts.livekit_nodes):
            name = self.livekit_name(node)
            if name in self.procs:
                continue
            self._spawn(name, [binary, "--config", str(self.livekit_config(node))], self.base_env())
            self._wait(name, f"tcp:{self.livekit_ports(node)[0]}", 30)
        if self.opts.livekit_nodes > 1 and "livekit-balancer" not in self.procs:
            port = self.opts.livekit_balancer_port
            nodes = [f"{HOST}:{self.livekit_ports(i)[0]}" for i in range(self.opts.livekit_nodes)]
            cmd = [sys.executable, "-m", "infra.local.balancer", "--listen", f"{HOST}:{port}"]
            self._spawn("livekit-balancer", [*cmd, *nodes], self.base_env())
            self._wait("livekit-balancer", f"tcp:{port}", 30)

    def kill_livekit_node(self, node: int, sig: int = signal.SIGKILL) -> None:
        """Stops LiveKit node `node` with `sig` (SIGKILL: a crash, nothing announced)."""
        proc = self.procs.pop(self.livekit_name(node), None)
        if proc is not None:
            _signal_group(proc, sig)
            proc.wait(timeout=30)

    def start_api(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "infra.local.lambda_asgi:app",
            "--host",
            HOST,
            "--port",
            str(self.opts.api_port),
            "--log-level",
            "warning",
        ]
        self._spawn("api", cmd, self.base_env())
        self._wait("api", f"{self.api_url}/openapi.json", 60)
        self.api_keys = seed_api_keys(self.moto_url, self.opts.api_keys)

    def start_watchdog(self) -> None:
        """The agent watchdog: what SQS → Lambda does in AWS, fed from the emulator's queue."""
        self._spawn("watchdog", [sys.executable, "-m", "infra.local.watchdog"], self.base_env())

    def start_outbox(self) -> None:
        """The customer-webhook delivery loop (in AWS: the outbox queue triggers a Lambda)."""
        self._spawn("outbox", [sys.executable, "-m", "infra.local.outbox"], self.base_env())

    def start_analysis(self) -> None:
        """Post-call analysis (in AWS: a stored report notifies a queue that triggers a Lambda)."""
        self._spawn("analysis", [sys.executable, "-m", "infra.local.analysis"], self.base_env())

    def start_worker(
        self,
        name: str = "worker",
        health_port: int | None = None,
        timeout: float = 90,
        command: str = "dev",
        env: dict[str, str] | None = None,
    ) -> None:
        """Starts a worker; more than one (each with its own name and port) makes a small fleet.

        `command="start"` is production mode: SIGTERM drains the live calls instead of closing."""
        full_env = self.worker_env() | (env or {})
        port = health_port or self.opts.worker_health_port
        full_env["OPENAGENTS_LIVEKIT_WORKER_PORT"] = str(port)
        log = self.log_path(name)
        offset = log.stat().st_size if log.exists() else 0
        self._spawn(name, [sys.executable, "-m", "worker", command], full_env)
        self._wait(name, f"http://{HOST}:{port}/", timeout)
        # Health answers before the worker has registered with LiveKit, and a room created in
        # between gets its agent dispatch dropped: ready means registered, and (its first
        # heartbeat in the table) counted by admission.
        deadline = time.monotonic() + timeout
        while not all(
            mark in log.read_bytes()[offset:].decode(errors="replace")
            for mark in ("registered worker", FIRST_HEARTBEAT)
        ):
            if self.procs[name].poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} did not register with LiveKit:\n{tail}")
            time.sleep(0.1)

    def stop_worker(self, sig: int = signal.SIGKILL, name: str = "worker") -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            _signal_group(proc, sig)
            proc.wait(timeout=30)

    # -- reaper -------------------------------------------------------------------------------

    def judge_canaries(self) -> str:
        """One run of the monitor's automatic rollback (every minute in AWS); what it printed."""
        done = subprocess.run(
            [sys.executable, "-c", _JUDGE_CANARIES],
            env=self.base_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout

    def _reaper_loop(self) -> None:
        env = self.base_env()
        cmd = [
            sys.executable,
            "-c",
            "from functions.background.reaper import reap_once; "
            "from functions.aio import run_sync; print(run_sync(reap_once())); " + _JUDGE_CANARIES,
        ]
        while not self._reaper_stop.wait(self.opts.reaper_interval):
            with self.log_path("reaper").open("ab") as log:
                subprocess.run(
                    cmd,
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=120,
                    check=False,
                )

    # -- whole stack --------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self.start_moto()
            self.start_api()
            self.start_watchdog()
            self.start_outbox()
            self.start_analysis()
            self.start_livekit()
            if self.opts.start_worker:
                self.start_worker()
        except BaseException:
            self.stop()
            raise
        if self.opts.reaper_interval > 0:
            self._reaper = threading.Thread(target=self._reaper_loop, daemon=True)
            self._reaper.start()

    def stop(self) -> None:
        self._reaper_stop.set()
        # Worker first, so it drains while LiveKit and the API are still there.
        workers = [name for name in self.procs if name.startswith("worker")]
        nodes = [name for name in self.procs if name.startswith("livekit")]
        for name in [*workers, *nodes, "watchdog", "outbox", "analysis", "api", "aws"]:
            proc = self.procs.pop(name, None)
            if proc is not None:
                stop_process(proc)

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process and its children, SIGKILL if they are still there after 15 s."""
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=10)
