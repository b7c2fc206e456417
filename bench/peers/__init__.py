"""The systems bench.alternatives measures next to this service, each in its own process(es)."""
