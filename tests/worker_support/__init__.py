"""Test support for the agent worker: a deterministic fake LLM, an MCP server."""
