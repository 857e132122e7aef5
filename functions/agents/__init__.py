"""Agents as versioned resources: immutable versions, traffic splits, promotion and rollback."""
