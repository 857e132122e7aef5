"""Session rules: limits, lifetimes, the state machine and webhook handling (no boto3, no HTTP)."""
