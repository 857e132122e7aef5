"""Domain models, events and errors: the vocabulary the service and the stores both speak."""
