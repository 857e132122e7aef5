"""Shared library of the voice platform: the unified config and the API-to-agent dispatch contract."""
