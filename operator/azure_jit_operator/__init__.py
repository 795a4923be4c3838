"""azure-jit-operator: declarative Azure Just-in-Time VM access for Kubernetes."""

__version__ = "0.1.0"
