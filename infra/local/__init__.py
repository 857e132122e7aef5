"""The local stack: an AWS emulator built from template.yaml, the API, LiveKit and a worker."""
