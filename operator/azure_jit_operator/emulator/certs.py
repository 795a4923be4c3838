"""TLS material for the emulator: its CA and a server certificate for the loopback
addresses (see :mod:`azure_jit_operator.tls`). Azure SDK clients refuse bearer tokens
over plain HTTP, so the emulator speaks HTTPS."""

from __future__ import annotations

from pathlib import Path

from azure_jit_operator.tls import TlsFiles
from azure_jit_operator.tls import ensure_tls_files as _ensure

__all__ = ["TlsFiles", "ensure_tls_files"]


def ensure_tls_files(directory: Path) -> TlsFiles:
    return _ensure(directory, name="azure-jit-operator emulator")
