"""The LiveKit agent worker: server set-up, speech pipeline, agents, fleet integration."""
