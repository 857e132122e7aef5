"""The HTTP API: FastAPI app, routes and the Mangum Lambda handler."""
