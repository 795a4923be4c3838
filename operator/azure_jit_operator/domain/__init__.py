"""Pure domain logic: spec models, validation, durations, prefixes, lifecycle.

Nothing here performs I/O or imports kopf, kubernetes, aiohttp or the Azure SDK; the
import-linter contracts in pyproject.toml enforce it.
"""
