"""Outbound calls and call state through LiveKit's SIP API (imported lazily: off the cold path)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.domain.models import DialRequest
from functions.store.errors import Rejected, StoreUnavailable


class LiveKitPhone:
    """Outbound calls and call state through LiveKit's SIP API, each bounded by a short timeout."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client

    async def dial(self, req: DialRequest) -> None:
        """Creates the call's room (which dispatches the agent) and starts ringing; no waiting.

        The call's progress comes back as webhooks: the SIP participant joins while it rings and
        leaves with a disconnect reason if nobody answers.
        """
        from livekit import api

        try:
            async with self._client() as lk:
                await lk.room.create_room(
                    api.CreateRoomRequest(
                        name=req.room_name,
                        empty_timeout=req.empty_timeout,
                        agents=[
                            api.RoomAgentDispatch(
                                agent_name=req.agent_name, metadata=req.dispatch_metadata
                            )
                        ],
                    )
                )
                await lk.sip.create_sip_participant(await self._call_request(lk, req))
        except api.TwirpError as exc:
            raise Rejected(f"LiveKit refused the call: {exc.code}: {exc.message}") from exc
        except LookupError as exc:
            raise Rejected(str(exc)) from exc
        except Exception as exc:
            raise StoreUnavailable(f"LiveKit is unreachable: {type(exc).__name__}") from exc

    async def _call_request(self, lk: Any, req: DialRequest) -> Any:
        from livekit import api

        from functions.store.sip import outbound_trunk_id

        call = api.CreateSIPParticipantRequest(
            room_name=req.room_name,
            participant_identity=req.identity,
            sip_number=req.caller_id,
            ringing_timeout=_duration(req.ring_timeout),
            wait_until_answered=False,
        )
        if req.to.startswith("sip:"):
            # A SIP URI names its own host: dial it straight, without the configured trunk.
            user, _, host = req.to.removeprefix("sip:").partition("@")
            call.sip_call_to = user
            call.trunk.CopyFrom(
                api.SIPOutboundConfig(hostname=host, transport=api.SIPTransport.SIP_TRANSPORT_UDP)
            )
            return call
        trunk_id = await outbound_trunk_id(lk)
        if trunk_id is None:
            raise LookupError(
                "no outbound trunk on LiveKit: run `python -m functions.telephony sync`"
            )
        call.sip_trunk_id = trunk_id
        call.sip_call_to = req.to
        return call

    async def call_status(self, room_name: str) -> str | None:
        """`sip.callStatus` of the room's phone (dialing, ringing, active, hangup), if it is there."""
        from livekit import api

        try:
            async with self._client() as lk:
                resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room_name))
        except api.TwirpError as exc:
            if exc.code == api.TwirpErrorCode.NOT_FOUND:
                return None
            raise StoreUnavailable(f"LiveKit refused the participant list: {exc.code}") from exc
        except Exception as exc:
            raise StoreUnavailable(f"LiveKit is unreachable: {type(exc).__name__}") from exc
        for p in resp.participants:
            if p.kind == api.ParticipantInfo.Kind.SIP:
                return p.attributes.get("sip.callStatus")
        return None


def _duration(seconds: int) -> Any:
    from google.protobuf.duration_pb2 import Duration

    return Duration(seconds=seconds)
