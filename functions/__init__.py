"""Control plane: the voice sessions API, webhooks and scheduled jobs, run on AWS Lambda."""
