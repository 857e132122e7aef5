"""Domain errors; the API maps each to one HTTP status and a JSON `{error, message}` body."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init_subclass__(cls, status_code: int = 400, code: str = "bad_request") -> None:
        cls.status_code = status_code
        cls.code = code

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthorized(DomainError, status_code=401, code="unauthorized"):
    """No API key, or one that is unknown or revoked."""


class NotFound(DomainError, status_code=404, code="not_found"):
    """No such session for this caller."""


class InvalidRequest(DomainError, status_code=422, code="validation_error"):
    """A field the caller can fix."""


class SessionLimitReached(DomainError, status_code=429, code="session_limit_reached"):
    """The caller (its API key) already has as many live sessions as allowed."""


class EndUserLimitReached(SessionLimitReached, status_code=429, code="end_user_limit_reached"):
    """The end user named in the create already has as many live sessions as allowed."""


class AccountLimitReached(SessionLimitReached, status_code=429, code="account_limit_reached"):
    """The caller's account already holds as many live sessions as its limit allows."""


class IdempotencyKeyReused(DomainError, status_code=422, code="idempotency_key_reused"):
    """The `Idempotency-Key` was already used by this caller for a different body."""


class IdempotencyKeyInUse(DomainError, status_code=409, code="idempotency_key_in_use"):
    """A create with the same `Idempotency-Key` is being written right now; retry shortly."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class FleetAtCapacity(DomainError, status_code=503, code="fleet_at_capacity"):
    """No worker has a free slot for one more session; `Retry-After` says when to try again."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class AgentNotServed(DomainError, status_code=503, code="agent_not_served"):
    """Workers are running, but none under the agent name the config dispatches to."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class DependencyUnavailable(DomainError, status_code=503, code="dependency_unavailable"):
    """The table or LiveKit cannot be reached; retrying after `Retry-After` seconds helps."""

    def __init__(self, message: str, retry_after: int = 2) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class ConfigUnavailable(DomainError, status_code=503, code="config_invalid"):
    """The voice config is invalid or turns real-time voice off."""


class WebhookRejected(DomainError, status_code=401, code="invalid_webhook"):
    """A webhook whose signature or body did not verify."""


class CallNotPlaced(DomainError, status_code=502, code="call_not_placed"):
    """LiveKit's SIP side refused or could not start an outbound call."""


class StaleRevision(DomainError, status_code=409, code="stale_revision"):
    """A write based on a revision of the traffic that is no longer the one in force."""


class RevisionRequired(DomainError, status_code=428, code="revision_required"):
    """A traffic write must say which revision it replaces (`If-Match` or `expected_revision`)."""


class NothingToRollBack(DomainError, status_code=409, code="nothing_to_roll_back"):
    """The allocation in force has no earlier one to go back to."""


class EvaluationRequired(DomainError, status_code=409, code="evaluation_required"):
    """`evals.required` is on and the split would give a version without a passing evaluation
    more than the canary share."""
