"""Infrastructure helpers: reading template.yaml, the local AWS emulator and local stack."""
