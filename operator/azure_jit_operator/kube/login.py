"""Credentials for kopf from an explicit kubeconfig file, loaded by the official client so
every kubeconfig form it understands (certificates, tokens, exec plugins) works."""

from __future__ import annotations

from pathlib import Path

import kopf
import kubernetes


def connection_from_kubeconfig(path: Path) -> kopf.ConnectionInfo:
    config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(path), client_configuration=config)
    header = config.get_api_key_with_prefix("authorization") or config.get_api_key_with_prefix(
        "BearerToken"
    )
    scheme, _, token = (header or "").partition(" ")
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
    )
