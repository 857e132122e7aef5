"""Redis and LiveKit's SIP service on loopback: what phone calls need next to livekit-server."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from functions.settings import DEV_LIVEKIT_KEY as LIVEKIT_KEY
from functions.settings import DEV_LIVEKIT_SECRET as LIVEKIT_SECRET
from infra.local.paths import ROOT
from infra.local.stack import free_port, stop_process, wait_ready

DEFAULT_SIP_PORT = 5060
# RTP ports per call: one per call leg, so a handful covers a test or a laptop.
RTP_PORTS = 20


def find_livekit_sip() -> str | None:
    """The SIP service binary: `LIVEKIT_SIP_BIN`, one on PATH, or the one `make livekit-sip` built."""
    return _executable(
        os.environ.get("LIVEKIT_SIP_BIN"),
        shutil.which("livekit-sip"),
        str(ROOT / ".bin" / "livekit-sip"),
    )


def find_redis_server() -> str | None:
    return _executable(os.environ.get("REDIS_SERVER_BIN"), shutil.which("redis-server"))


def _executable(*candidates: str | None) -> str | None:
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port_range(count: int) -> tuple[int, int]:
    """`count` consecutive UDP ports that are free now, for the SIP service's RTP range."""
    import socket

    for _ in range(50):
        start = free_port()
        socks = []
        try:
            for port in range(start, start + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return start, start + count - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"found no {count} consecutive free UDP ports")


def redis_command(binary: str, port: int) -> list[str]:
    """Redis on loopback with no persistence: SIP keeps only live call state there."""
    return [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
    ]


def sip_yaml(
    livekit_url: str,
    redis_address: str,
    sip_port: int,
    rtp_ports: tuple[int, int],
    health_port: int,
    log_level: str = "info",
) -> str:
    """The SIP service's config on loopback with the dev keys.

    `listen_ip` and `nat_1_to_1_ip` keep it from advertising the machine's network address in SDP;
    `max_cpu_utilization: 1.0` keeps a busy machine from refusing calls with "cpu exhausted".
    """
    lines = [
        f"api_key: {LIVEKIT_KEY}",
        f"api_secret: {LIVEKIT_SECRET}",
        f"ws_url: {livekit_url}",
        "redis:",
        f"  address: {redis_address}",
        f"sip_port: {sip_port}",
        f"rtp_port: {rtp_ports[0]}-{rtp_ports[1]}",
        f"health_port: {health_port}",
        "listen_ip: 127.0.0.1",
        "nat_1_to_1_ip: 127.0.0.1",
        "use_external_ip: false",
        "max_cpu_utilization: 1.0",
        "logging:",
        f"  level: {log_level}",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class SipOptions:
    run_dir: Path
    redis_port: int = field(default_factory=free_port)
    sip_port: int = DEFAULT_SIP_PORT
    health_port: int = field(default_factory=free_port)
    rtp_ports: tuple[int, int] = field(default_factory=lambda: free_port_range(RTP_PORTS))
    log_level: str = "info"

    @classmethod
    def on_free_ports(cls, run_dir: Path, **kwargs: object) -> SipOptions:
        return cls(run_dir=run_dir, sip_port=free_port(), **kwargs)  # type: ignore[arg-type]

    @property
    def redis_address(self) -> str:
        return f"127.0.0.1:{self.redis_port}"

    @property
    def sip_address(self) -> str:
        """Where phones and trunks send their INVITEs (UDP)."""
        return f"127.0.0.1:{self.sip_port}"


class SipServices:
    """Redis, then (once livekit-server runs with that Redis) the SIP service; stopped together.

    Order matters: livekit-server must be given `redis_address` before it starts, and the SIP
    service needs livekit-server's URL, so `start_redis()` and `start_sip(url)` are separate.
    """

    def __init__(self, options: SipOptions) -> None:
        self.opts = options
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.opts.run_dir.mkdir(parents=True, exist_ok=True)

    def log_path(self, name: str) -> Path:
        return self.opts.run_dir / f"{name}.log"

    def _spawn(self, name: str, cmd: list[str], probe: str, timeout: float) -> None:
        with self.log_path(name).open("ab") as log:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs[name] = proc
        wait_ready(name, proc, self.log_path(name), probe, timeout)

    def start_redis(self) -> None:
        binary = find_redis_server()
        if binary is None:
            raise RuntimeError("no redis-server: run `make sip-deps` or put one on PATH")
        self._spawn(
            "redis", redis_command(binary, self.opts.redis_port), f"tcp:{self.opts.redis_port}", 30
        )

    def start_sip(self, livekit_url: str) -> None:
        binary = find_livekit_sip()
        if binary is None:
            raise RuntimeError("no livekit-sip: run `make livekit-sip` or put one on PATH")
        config = self.opts.run_dir / "sip.yaml"
        config.write_text(
            sip_yaml(
                livekit_url,
                self.opts.redis_address,
                self.opts.sip_port,
                self.opts.rtp_ports,
                self.opts.health_port,
                self.opts.log_level,
            )
        )
        health = f"http://127.0.0.1:{self.opts.health_port}/"
        self._spawn("sip", [binary, "--config", str(config)], health, 60)

    def __enter__(self) -> SipServices:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for name in ["sip", "redis"]:
            proc = self.procs.pop(name, None)
            if proc is not None:
                stop_process(proc)


def sip_port_from_env() -> int:
    """`VOICE_SIP_PORT`, else 5060: where `make dev` takes calls from a SIP phone."""
    return int(os.environ.get("VOICE_SIP_PORT", str(DEFAULT_SIP_PORT)))


def sync_numbers(livekit_url: str) -> list[str]:
    """What the local stack does on start: the config's numbers and trunk pushed to LiveKit."""
    import asyncio

    from functions.settings import Settings
    from functions.telephony import sync, trunk_password
    from voice.config import get_config

    realtime = get_config().config.voice.realtime
    password = trunk_password(dict(os.environ))
    result = asyncio.run(sync(Settings(livekit_url=livekit_url), realtime, password))
    return [entry.number for entry in result.inbound]
