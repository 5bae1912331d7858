"""I/O adapters: the Kubernetes API and Prometheus, each behind a small class that maps library
errors to ``slogate.errors`` and counts writes."""
