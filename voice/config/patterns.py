"""Patterns config values must match, each with the words an error message uses for it."""

from __future__ import annotations

HTTP_URL = r"^https?://"
# E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
E164 = r"^\+[1-9][0-9]{1,14}$"
HOST_PORT = r"^[^\s:]+(:[0-9]{1,5})?$"
MCP_SERVER_NAME = r"^[A-Za-z0-9_-]{1,64}$"
SPECIALIST_NAME = r"^[a-z][a-z0-9_]{0,40}$"

MEANINGS = {
    HTTP_URL: "an http:// or https:// URL, e.g. https://example.com/hooks/voice",
    E164: "a phone number in E.164: + then the country code and number, 15 digits at most",
    HOST_PORT: "a host name or IP address, optionally with :port, e.g. sip.example.com:5060",
    MCP_SERVER_NAME: "1 to 64 letters, digits, _ or -",
    SPECIALIST_NAME: "a lowercase letter, then up to 40 lowercase letters, digits or _",
}


class KeyPathError(ValueError):
    """A check across sections that names the key at fault, relative to where it is raised."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
