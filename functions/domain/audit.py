"""What the invariant check reads and reports: live-session counters, findings, the report."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from functions.domain.models import CounterRef


class LimitCounter(BaseModel):
    """A live-session counter (a user's, an end user's or an account's) as stored;
    `updated_at` is when a create last counted a session."""

    model_config = ConfigDict(frozen=True)

    ref: CounterRef
    live: int
    updated_at: datetime | None = None


class FindingKind(StrEnum):
    COUNTER_MISMATCH = "counter_mismatch"  # a counter differs from the live sessions it counts
    LIVE_WITHOUT_ROOM = "live_without_room"  # live past the join window, LiveKit has no room
    ROOM_WITHOUT_SESSION = "room_without_session"  # a room whose session is unknown or final


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: FindingKind
    subject: str  # the counter (a user id alone for a user's), session id or room name
    detail: str
    repaired: bool = False


class AuditReport(BaseModel):
    checked_at: datetime
    users: int
    live_sessions: int
    rooms: int | None  # None: LiveKit could not be reached, so room checks were skipped
    findings: list[Finding] = []

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if not f.repaired]

    @property
    def ok(self) -> bool:
        return not self.violations and self.rooms is not None

    def metrics(self) -> dict[str, int]:
        repaired = [f for f in self.findings if f.repaired]
        return {
            "AuditViolations": len(self.violations),
            "AuditCountersRepaired": sum(f.kind is FindingKind.COUNTER_MISMATCH for f in repaired),
            "AuditRoomsDeleted": sum(f.kind is FindingKind.ROOM_WITHOUT_SESSION for f in repaired),
        }

    def render(self) -> str:
        """The report as a person reads it: one line per finding."""
        rooms = "unreachable (room checks skipped)" if self.rooms is None else str(self.rooms)
        lines = [
            f"audit at {self.checked_at.isoformat(timespec='seconds')}: {self.users} users, "
            f"{self.live_sessions} live sessions, LiveKit rooms: {rooms}",
        ]
        for f in self.findings:
            mark = "repaired" if f.repaired else "VIOLATION"
            lines.append(f"  {mark} {f.kind.value} {f.subject}: {f.detail}")
        lines.append("clean" if self.ok else f"{len(self.violations)} violation(s)")
        return "\n".join(lines)
