"""Kubernetes adapter: status, condition and Event writing, object lookups."""
