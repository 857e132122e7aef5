"""Test helpers the suites import: stand-ins, servers, events and the local stack on free ports."""
