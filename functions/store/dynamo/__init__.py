"""DynamoDB access: sessions with per-user counters, and API keys, in the one table."""

from functions.store.dynamo.api_keys import ApiKeyStore
from functions.store.dynamo.audit import AuditStore
from functions.store.dynamo.deliveries import DeliveryStore
from functions.store.dynamo.fleet import FleetStore
from functions.store.dynamo.sessions import SessionStore

__all__ = ["ApiKeyStore", "AuditStore", "DeliveryStore", "FleetStore", "SessionStore"]
