"""Lambda handlers that run off the request path: on a schedule (the reaper, the health monitor)
and from SQS (the agent watchdog, the customer-webhook outbox)."""
