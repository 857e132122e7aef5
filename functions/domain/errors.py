"""Domain errors; the API maps each to one HTTP status and a JSON `{error, message}` body."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class InvalidRequest(DomainError):
    status_code = 422
    code = "validation_error"


class SessionLimitReached(DomainError):
    status_code = 429
    code = "session_limit_reached"


class DependencyUnavailable(DomainError):
    status_code = 503
    code = "dependency_unavailable"


class ConfigUnavailable(DomainError):
    status_code = 503
    code = "config_invalid"


class WebhookRejected(DomainError):
    status_code = 401
    code = "invalid_webhook"
