"""Data access: DynamoDB for sessions and API keys, LiveKit for rooms, tokens and dispatch."""
