"""LiveKit access: join tokens that dispatch the agent, webhook verification, room calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.domain.events import Participant, RoomEvent
from functions.domain.models import JoinTokenRequest
from functions.store.errors import Rejected, StoreUnavailable


@dataclass(frozen=True)
class LiveKitCredentials:
    url: str
    api_key: str
    api_secret: str = ""

    def __repr__(self) -> str:  # the secret must never reach a log line
        return f"LiveKitCredentials(url={self.url!r}, api_key={self.api_key!r}, api_secret='***')"


class LiveKitTokens:
    """Join tokens signed with the API key; minting one needs no call to LiveKit."""

    def __init__(self, creds: LiveKitCredentials) -> None:
        self._creds = creds

    @property
    def url(self) -> str:
        return self._creds.url

    def mint(self, req: JoinTokenRequest) -> str:
        """A join token for one room only, which also creates the room and dispatches the agent."""
        from livekit import api  # deferred: keeps the Lambda cold path light

        creds = self._creds
        grants = api.VideoGrants(
            room_join=True,
            room=req.room_name,
            can_publish=True,
            can_subscribe=True,
            can_publish_data=True,
        )
        room_config = api.RoomConfiguration(
            name=req.room_name,
            empty_timeout=req.empty_timeout,
            max_participants=req.max_participants,
            agents=[
                api.RoomAgentDispatch(agent_name=req.agent_name, metadata=req.dispatch_metadata)
            ],
        )
        return (
            api.AccessToken(creds.api_key, creds.api_secret)
            .with_identity(req.identity)
            .with_name(req.display_name)
            .with_ttl(req.ttl)
            .with_grants(grants)
            .with_room_config(room_config)
            .to_jwt()
        )


class LiveKitWebhooks:
    """Verifies LiveKit's signed webhooks against the API key and reads them as RoomEvents."""

    def __init__(self, creds: LiveKitCredentials) -> None:
        self._creds = creds

    def verify(self, body: bytes, auth_header: str | None) -> RoomEvent:
        """Checks the signed token and the SHA-256 of the raw body, then reads the event."""
        from livekit import api

        creds = self._creds
        if not auth_header:
            raise Rejected("missing Authorization header: LiveKit signs every webhook")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Rejected("webhook body is not UTF-8") from exc
        receiver = api.WebhookReceiver(api.TokenVerifier(creds.api_key, creds.api_secret))
        try:
            event = receiver.receive(text, auth_header)
        except Exception as exc:  # the receiver raises bare Exceptions and jwt errors
            raise Rejected(
                "webhook signature, body hash or token age did not verify "
                "against the LiveKit API key"
            ) from exc
        participant = event.participant if event.HasField("participant") else None
        return RoomEvent(
            event=event.event,
            room_name=event.room.name if event.HasField("room") else "",
            participant_is_agent=(
                participant is not None and participant.kind == api.ParticipantInfo.Kind.AGENT
            ),
            created_at=datetime.fromtimestamp(event.created_at, UTC) if event.created_at else None,
            **_sip_fields(participant),
        )


def _sip_fields(participant: Any) -> dict[str, Any]:
    """The phone call's side of an event: the SIP participant's attributes and why it left."""
    from livekit import api

    if participant is None or participant.kind != api.ParticipantInfo.Kind.SIP:
        return {}
    return {
        "participant_is_sip": True,
        "participant_attributes": dict(participant.attributes),
        "disconnect_reason": api.DisconnectReason.Name(participant.disconnect_reason),
    }


class LiveKitRooms:
    """Room service and agent dispatch calls, each bounded by a short timeout."""

    def __init__(self, creds: LiveKitCredentials, timeout_seconds: float = 3.0) -> None:
        self._creds = creds
        self._timeout = timeout_seconds

    def _client(self) -> Any:
        return livekit_api(self._creds, self._timeout)

    async def list_rooms(self) -> dict[str, int]:
        """Every room LiveKit has, with how many participants are in it."""
        from livekit import api

        try:
            async with self._client() as lk:
                resp = await lk.room.list_rooms(api.ListRoomsRequest())
        except Exception as exc:
            raise StoreUnavailable(f"LiveKit is unreachable: {type(exc).__name__}") from exc
        return {room.name: room.num_participants for room in resp.rooms}

    async def delete_room(self, room_name: str) -> None:
        """Deletes a room; a room that does not exist counts as deleted."""
        from livekit import api

        try:
            async with self._client() as lk:
                await lk.room.delete_room(api.DeleteRoomRequest(room=room_name))
        except api.TwirpError as exc:
            if exc.code == api.TwirpErrorCode.NOT_FOUND:
                return
            raise StoreUnavailable(f"LiveKit refused the room deletion: {exc.code}") from exc
        except Exception as exc:
            raise StoreUnavailable(f"LiveKit is unreachable: {type(exc).__name__}") from exc

    async def list_participants(self, room_name: str) -> list[Participant]:
        """Everyone in the room; an unknown room has nobody."""
        from livekit import api

        try:
            async with self._client() as lk:
                resp = await lk.room.list_participants(api.ListParticipantsRequest(room=room_name))
        except api.TwirpError as exc:
            if exc.code == api.TwirpErrorCode.NOT_FOUND:
                return []
            raise StoreUnavailable(f"LiveKit refused the participant list: {exc.code}") from exc
        except Exception as exc:
            raise StoreUnavailable(f"LiveKit is unreachable: {type(exc).__name__}") from exc
        agent_kind = api.ParticipantInfo.Kind.AGENT
        return [
            Participant(
                identity=p.identity,
                is_agent=p.kind == agent_kind,
                joined_at=_joined_at(p.joined_at_ms or p.joined_at * 1000),
                call_status=p.attributes.get("sip.callStatus")
                if p.kind == api.ParticipantInfo.Kind.SIP
                else None,
            )
            for p in resp.participants
        ]

    async def dispatch_agent(self, room_name: str, agent_name: str, metadata: str) -> None:
        from livekit import api

        try:
            async with self._client() as lk:
                await lk.agent_dispatch.create_dispatch(
                    api.CreateAgentDispatchRequest(
                        agent_name=agent_name, room=room_name, metadata=metadata
                    )
                )
        except Exception as exc:
            raise StoreUnavailable(f"LiveKit agent dispatch failed: {exc}") from exc

    async def agent_on_its_way(self, room_name: str) -> bool:
        """True when a worker has taken one of the room's dispatches and its job is still
        pending or running: the agent is coming, only slowly (a process still starting)."""
        from livekit import api
        from livekit.protocol.agent import JobStatus

        try:
            async with self._client() as lk:
                found = await lk.agent_dispatch.list_dispatch(room_name=room_name)
        except api.TwirpError as exc:
            if exc.code == api.TwirpErrorCode.NOT_FOUND:
                return False
            raise StoreUnavailable(f"LiveKit refused the dispatch list: {exc.code}") from exc
        except Exception as exc:
            raise StoreUnavailable(f"LiveKit is unreachable: {type(exc).__name__}") from exc
        under_way = (JobStatus.JS_PENDING, JobStatus.JS_RUNNING)
        return any(job.state.status in under_way for d in found for job in d.state.jobs)

    async def send_data(self, room_name: str, topic: str, payload: bytes) -> None:
        """A reliable data message to everyone in the room, on `topic`."""
        from livekit import api

        try:
            async with self._client() as lk:
                await lk.room.send_data(
                    api.SendDataRequest(
                        room=room_name, data=payload, kind=api.DataPacket.Kind.RELIABLE, topic=topic
                    )
                )
        except Exception as exc:
            raise StoreUnavailable(f"LiveKit did not take the data message: {exc}") from exc


def _joined_at(epoch_ms: int) -> datetime | None:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC) if epoch_ms else None


def livekit_api(creds: LiveKitCredentials, timeout_seconds: float) -> Any:
    """A LiveKit server API client whose every call gives up after `timeout_seconds`."""
    import aiohttp
    from livekit import api

    return api.LiveKitAPI(
        _http_url(creds.url),
        creds.api_key,
        creds.api_secret,
        timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        failover=False,
    )


def _http_url(url: str) -> str:
    # The server API speaks HTTP(S) on the same host as the WebSocket signalling URL.
    if url.startswith("wss://"):
        return "https://" + url[len("wss://") :]
    if url.startswith("ws://"):
        return "http://" + url[len("ws://") :]
    return url
