"""Small pieces with outsized effects: how Azure spells JIT durations back, and the TLS
material clients must trust."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from azure_arm_emulator.certs import ensure_tls_files
from azure_arm_emulator.jit import format_duration


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(timedelta(hours=3), "PT3H", id="three hours read PT3H"),
        pytest.param(timedelta(minutes=90), "PT1H30M", id="ninety minutes read PT1H30M"),
        pytest.param(timedelta(days=1), "P1D", id="a day reads P1D as .NET writes it"),
        pytest.param(timedelta(minutes=5), "PT5M", id="five minutes read PT5M"),
        pytest.param(timedelta(hours=24, seconds=1), "P1DT1S", id="days and seconds combine"),
    ],
)
def test_durations_render_like_dotnet_timespans(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


def test_certificates_cover_loopback_and_keep_their_ca(tmp_path: Path) -> None:
    first = ensure_tls_files(tmp_path)
    ca_before = first.ca.read_bytes()
    server_before = first.server.read_bytes()

    second = ensure_tls_files(tmp_path)

    assert second.ca.read_bytes() == ca_before
    assert second.server.read_bytes() != server_before
    cert = x509.load_pem_x509_certificate(second.server.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert (second.ca_key.stat().st_mode & 0o777) == 0o600
    second.client_context()
    second.server_context()
