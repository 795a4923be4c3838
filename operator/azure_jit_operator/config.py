"""Operator settings: read once at start from the environment (and CLI flags), validated,
then passed explicitly. Nothing reads the environment anywhere else."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from .domain.close_timing import MIN_CLOSE_GRACE, PRIOR_CLOSE_SECONDS, SAFETY
from .domain.durations import DurationError, parse_kube_duration

PUBLIC_ARM_ENDPOINT = "https://management.azure.com"


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable and the fix."""


@dataclass(frozen=True, slots=True)
class Settings:
    arm_endpoint: str = PUBLIC_ARM_ENDPOINT
    ca_bundle: Path | None = None
    metrics_port: int = 9090
    bind_address: str = "127.0.0.1"
    close_grace: timedelta = timedelta(seconds=30)
    drift_interval: timedelta = timedelta(minutes=5)
    terminal_ttl: timedelta = timedelta(hours=24)
    namespaces: tuple[str, ...] = ()
    log_format: str = "json"
    log_level: str = "INFO"
    kubeconfig: Path | None = None
    peering_name: str = "azure-jit-operator"
    # kopf peering pauses every operator that sees a peer of higher (or equal!) priority, so
    # replicas need distinct priorities: unset means a random one per process start.
    peering_priority: int | None = None
    standalone: bool = False
    # off: one global identity, no Secret reads (and no RBAC on Secrets); optional: a
    # namespace's azure-jit-credential Secret overrides it; required: every namespace needs one.
    namespace_credentials: str = "off"
    # Admission webhooks (requester stamping, approvals, validation at apply time):
    # off; managed (self-made TLS, the operator keeps the webhook configurations and their
    # caBundle); external (certificates from webhook_cert_dir, e.g. cert-manager, and the
    # webhook configurations from deploy/).
    webhooks: str = "off"
    webhook_port: int = 9443
    webhook_host: str = "127.0.0.1"
    webhook_cert_dir: Path | None = None

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        defaults = cls()
        ca = env.get("AZURE_JIT_CA_BUNDLE")
        kubeconfig = env.get("AZURE_JIT_KUBECONFIG")
        settings = cls(
            arm_endpoint=env.get("AZURE_JIT_ARM_ENDPOINT", defaults.arm_endpoint).rstrip("/"),
            ca_bundle=Path(ca) if ca else None,
            metrics_port=_port(env, "AZURE_JIT_METRICS_PORT", defaults.metrics_port),
            bind_address=env.get("AZURE_JIT_BIND_ADDRESS", defaults.bind_address),
            close_grace=_duration(env, "AZURE_JIT_CLOSE_GRACE", defaults.close_grace),
            drift_interval=_duration(env, "AZURE_JIT_DRIFT_INTERVAL", defaults.drift_interval),
            terminal_ttl=_duration(env, "AZURE_JIT_TERMINAL_TTL", defaults.terminal_ttl),
            namespaces=tuple(
                ns.strip() for ns in env.get("AZURE_JIT_NAMESPACES", "").split(",") if ns.strip()
            ),
            log_format=env.get("AZURE_JIT_LOG_FORMAT", defaults.log_format),
            log_level=env.get("AZURE_JIT_LOG_LEVEL", defaults.log_level).upper(),
            kubeconfig=Path(kubeconfig) if kubeconfig else None,
            peering_name=env.get("AZURE_JIT_PEERING_NAME", defaults.peering_name),
            peering_priority=_optional_int(env, "AZURE_JIT_PEERING_PRIORITY"),
            standalone=_flag(env, "AZURE_JIT_STANDALONE"),
            webhooks=env.get("AZURE_JIT_WEBHOOKS", defaults.webhooks).lower(),
            webhook_port=_port(env, "AZURE_JIT_WEBHOOK_PORT", defaults.webhook_port),
            webhook_host=env.get("AZURE_JIT_WEBHOOK_HOST", defaults.webhook_host),
            webhook_cert_dir=Path(cert_dir)
            if (cert_dir := env.get("AZURE_JIT_WEBHOOK_CERT_DIR"))
            else None,
            namespace_credentials=env.get(
                "AZURE_JIT_NAMESPACE_CREDENTIALS", defaults.namespace_credentials
            ).lower(),
        )
        return settings.validated()

    def with_overrides(self, **changes: object) -> Settings:
        """Apply CLI flags (None means "not given") and validate again."""
        given = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **given).validated()  # type: ignore[arg-type]

    def validated(self) -> Settings:
        if not self.arm_endpoint.startswith("https://"):
            raise SettingsError(
                f"AZURE_JIT_ARM_ENDPOINT={self.arm_endpoint!r}: must be an https:// URL "
                "(Azure Resource Manager or the emulator)"
            )
        if self.ca_bundle is not None and not self.ca_bundle.is_file():
            raise SettingsError(
                f"AZURE_JIT_CA_BUNDLE={self.ca_bundle}: no such file; point it at the PEM CA "
                "bundle that signs the ARM endpoint (the emulator prints its path)"
            )
        if self.close_grace < MIN_CLOSE_GRACE:
            minimum = int(MIN_CLOSE_GRACE.total_seconds())
            raise SettingsError(
                f"AZURE_JIT_CLOSE_GRACE={_seconds(self.close_grace)}: must be at least "
                f"{minimum}s. Past expiresAt the operator deletes the allow rule itself (a "
                "long-running DELETE and a confirming NSG read, budgeted at "
                f"{PRIOR_CLOSE_SECONDS:g}s until measured, with a {SAFETY:g}x margin); a "
                f"shorter grace is a deadline that path cannot keep. Use {minimum}s or more."
            )
        if self.drift_interval < timedelta(seconds=5):
            raise SettingsError("AZURE_JIT_DRIFT_INTERVAL: must be at least 5s")
        if self.webhooks not in ("off", "managed", "external"):
            raise SettingsError("AZURE_JIT_WEBHOOKS: must be off, managed or external")
        if self.webhooks == "external" and self.webhook_cert_dir is None:
            raise SettingsError(
                "AZURE_JIT_WEBHOOKS=external needs AZURE_JIT_WEBHOOK_CERT_DIR (tls.crt, tls.key, "
                "ca.crt, e.g. a cert-manager Secret mounted as a volume)"
            )
        if self.namespace_credentials not in ("off", "optional", "required"):
            raise SettingsError(
                "AZURE_JIT_NAMESPACE_CREDENTIALS: must be off, optional or required"
            )
        if self.log_format not in ("json", "plain"):
            raise SettingsError("AZURE_JIT_LOG_FORMAT: must be json or plain")
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError("AZURE_JIT_LOG_LEVEL: must be DEBUG, INFO, WARNING or ERROR")
        return self


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise SettingsError(f"{name}={raw!r}: must be a port number (0 picks a free port)")
    return int(raw)


def _duration(env: Mapping[str, str], name: str, default: timedelta) -> timedelta:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse_kube_duration(raw)
    except DurationError as exc:
        raise SettingsError(f"{name}: {exc}") from None


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes")


def _optional_int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not raw.lstrip("-").isdigit():
        raise SettingsError(f"{name}={raw!r}: must be an integer")
    return int(raw)


def _seconds(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"
