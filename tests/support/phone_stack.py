"""A phone-capable local stack: Redis, LiveKit with Redis, the SIP service, the API and a worker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from livekit import api

from functions.settings import DEV_LIVEKIT_KEY as LIVEKIT_KEY
from functions.settings import DEV_LIVEKIT_SECRET as LIVEKIT_SECRET
from functions.settings import Settings
from functions.store.sip import SyncedInbound
from functions.telephony import sync
from infra.local.sip import SipOptions, SipServices, find_livekit_sip, find_redis_server
from infra.local.stack import LocalStack, free_port
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.phone import Phone
from tests.support.stack import stack_with_fake_models
from tests.support.tools import missing_tool
from voice.config import get_config

INBOUND_NUMBER = "+15550100"


@dataclass
class PhoneStack:
    stack: LocalStack
    sip: SipServices
    inbound: SyncedInbound
    run_dir: Path

    @property
    def inbound_uri(self) -> str:
        return f"sip:{INBOUND_NUMBER}@{self.sip.opts.sip_address}"

    def livekit_api(self) -> api.LiveKitAPI:
        return livekit_api(self.stack.livekit_url)

    def call_in(self, run_dir: Path, name: str, codec: str | None = None) -> Phone:
        """A phone named `name` calling the inbound number, recording to `run_dir/<name>.wav`."""
        return Phone.start(
            run_dir,
            name,
            sip_port=free_port(),
            rtp_port=free_port(),
            mode="call",
            call=self.inbound_uri,
            record=run_dir / f"{name}.wav",
            codec=codec,
        )


def livekit_api(livekit_url: str) -> api.LiveKitAPI:
    return api.LiveKitAPI(livekit_url.replace("ws://", "http://"), LIVEKIT_KEY, LIVEKIT_SECRET)


def require_phone_parts() -> None:
    """Skips, saying what to run, when the SIP service, Redis or the scripted phone is missing."""
    if find_livekit_sip() is None:
        missing_tool("no livekit-sip binary: run `make livekit-sip` (or put one on PATH)")
    if find_redis_server() is None:
        missing_tool("no redis-server: run `make sip-deps` (or put one on PATH)")
    try:
        import pjsua2  # noqa: F401
    except ImportError:
        missing_tool("no pjsua2 (the scripted phone): `make install` installs pjsua2-python")


@contextmanager
def phone_stack_with_fake_models(
    run_dir: Path, fake: FakeOpenAIServer, **overrides: object
) -> Iterator[PhoneStack]:
    """Redis first (LiveKit needs its address), then the stack, then the SIP service;
    `overrides` replace StackOptions fields (e.g. `config_uri`)."""
    require_phone_parts()
    with SipServices(SipOptions.on_free_ports(run_dir)) as sip:
        sip.start_redis()
        with stack_with_fake_models(
            run_dir, fake, redis_address=sip.opts.redis_address, **overrides
        ) as stack:
            sip.start_sip(stack.livekit_url)
            inbound = asyncio.run(_sync_inbound(stack.livekit_url))
            yield PhoneStack(stack=stack, sip=sip, inbound=inbound, run_dir=run_dir)


async def _sync_inbound(livekit_url: str) -> SyncedInbound:
    """What the local stack does on start: the repo config's numbers pushed to LiveKit."""
    result = await sync(Settings(livekit_url=livekit_url), get_config().config.realtime)
    return next(s for s in result.inbound if s.number == INBOUND_NUMBER)
