"""DynamoDB access: sessions with their counters, accounts, API keys and agents, in the one table."""

from functions.store.dynamo.accounts import AccountStore
from functions.store.dynamo.agents import AgentStore
from functions.store.dynamo.api_keys import ApiKeyStore
from functions.store.dynamo.audit import AuditStore
from functions.store.dynamo.deliveries import DeliveryStore
from functions.store.dynamo.fleet import FleetStore
from functions.store.dynamo.sessions import SessionStore

__all__ = [
    "AccountStore",
    "AgentStore",
    "ApiKeyStore",
    "AuditStore",
    "DeliveryStore",
    "FleetStore",
    "SessionStore",
]
