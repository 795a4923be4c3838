"""The Kubernetes API calls ``kubectl jit`` makes, with the official ``kubernetes`` client.

Configuration is loaded as kubectl loads it: ``--kubeconfig``, else ``$KUBECONFIG`` (a
``:``-separated list is merged), else ``~/.kube/config``; ``--context`` or the current
context; the namespace from ``-n``, else the context's, else ``default``. Every API failure
becomes a :class:`CliError` carrying the API server's own message, so refusals (RBAC,
admission webhooks) reach the user word for word.

Objects travel as plain JSON dicts (camelCase, as ``kubectl get -o json`` shows them).
The client library is only partly typed, so it is held as ``Any`` here, in one place.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kubernetes as _kubernetes
import urllib3
import yaml

from azure_jit_operator.kubectl_jit.arguments import USAGE_ERROR, Connection
from azure_jit_operator.kubectl_jit.output import EventLine

_k8s: Any = _kubernetes
GROUP = "azurejit.dev"
VERSION = "v1alpha1"
REQUESTS = "jitaccessrequests"
POLICIES = "jitpolicies"
KIND = "JitAccessRequest"
JSON_PATCH = "application/json-patch+json"
REFUSED = 1
TIMEOUT = 30  # seconds per API call


class CliError(Exception):
    """A failure to report: ``message`` for the user, ``code`` for the exit status."""

    def __init__(self, message: str, *, code: int = REFUSED, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status  # the HTTP status, when the API server answered


@dataclass(frozen=True, slots=True)
class Kubeconfig:
    """What the kubeconfig resolved to."""

    path: str
    context: str
    namespace: str
    server: str


def resolve(connection: Connection, env: Mapping[str, str] | None = None) -> tuple[Kubeconfig, Any]:
    """Load the kubeconfig; returns what was chosen and a ``kubernetes.client.Configuration``."""
    env = os.environ if env is None else env
    path = connection.kubeconfig or env.get("KUBECONFIG") or "~/.kube/config"
    config = _k8s.config
    try:
        contexts, current = config.list_kube_config_contexts(config_file=path)
        name = connection.context or (current or {}).get("name")
        chosen = next((c for c in contexts or () if c.get("name") == name), None)
        if chosen is None:
            known = ", ".join(sorted(str(c.get("name")) for c in contexts or ())) or "none"
            raise CliError(
                f"context {name!r} is not in kubeconfig {path} (contexts: {known}); "
                "pick one with --context",
                code=USAGE_ERROR,
            )
        configuration = _k8s.client.Configuration()
        config.load_kube_config(
            config_file=path,
            context=name,
            client_configuration=configuration,
            persist_config=False,
        )
    except (config.ConfigException, OSError, ValueError, yaml.YAMLError) as exc:
        raise CliError(
            f"cannot use kubeconfig {path}: {str(exc).rstrip('.')}; point --kubeconfig or "
            "$KUBECONFIG at a valid kubeconfig",
            code=USAGE_ERROR,
        ) from None
    namespace = connection.namespace or (chosen.get("context") or {}).get("namespace") or "default"
    return Kubeconfig(
        path=path, context=str(name), namespace=namespace, server=str(configuration.host)
    ), configuration


def api_message(exc: BaseException) -> str:
    """The API server's message (``Status.message``) of a failed call, else the error."""
    body = getattr(exc, "body", None)
    if body:
        try:
            status = json.loads(body)
        except ValueError:
            return str(body).strip()
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
    reason = getattr(exc, "reason", None)
    return str(reason or exc)


def _status_text(status: int) -> str:
    return {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        409: "Conflict",
        422: "Invalid",
    }.get(status, str(status))


def server_error(exc: BaseException) -> CliError:
    """kubectl's spelling: ``Error from server (Forbidden): <the server's message>``."""
    status = int(getattr(exc, "status", 0) or 0)
    return CliError(
        f"Error from server ({_status_text(status)}): {api_message(exc)}", status=status
    )


class Cluster:
    """One connection to the API server, for the duration of a command."""

    def __init__(self, kubeconfig: Kubeconfig, api_client: Any) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = kubeconfig.namespace
        self._api = api_client
        self._custom = _k8s.client.CustomObjectsApi(api_client)

    @contextmanager
    def _calling(self) -> Iterator[None]:
        try:
            yield
        except _k8s.client.ApiException as exc:
            raise server_error(exc) from None
        except urllib3.exceptions.HTTPError as exc:
            raise CliError(
                f"cannot reach the API server at {self.kubeconfig.server} ({exc}); check the "
                f"cluster is up and context {self.kubeconfig.context!r} is the one you want"
            ) from None

    # -- who am I -------------------------------------------------------------------------

    def username(self) -> str:
        """The authenticated user's name (authentication.k8s.io/v1 SelfSubjectReview)."""
        authn = _k8s.client.AuthenticationV1Api(self._api)
        with self._calling():
            review = authn.create_self_subject_review(
                _k8s.client.V1SelfSubjectReview(), _request_timeout=TIMEOUT
            )
        info = review.status.user_info if review.status else None
        name = str(info.username or "") if info else ""
        if not name:
            raise CliError("the API server did not say who you are (SelfSubjectReview)")
        return name

    # -- JitAccessRequests ----------------------------------------------------------------

    def create_request(self, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._calling():
            created: dict[str, Any] = self._custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, REQUESTS, dict(body), _request_timeout=TIMEOUT
            )
        return created

    def get_request(self, name: str) -> dict[str, Any] | None:
        """The request, or None when it does not exist."""
        return self._get(name, self._custom.get_namespaced_custom_object)

    def get_request_status(self, name: str) -> dict[str, Any] | None:
        """The request read through its status subresource (what approvers may read)."""
        return self._get(name, self._custom.get_namespaced_custom_object_status)

    def _get(self, name: str, call: Any) -> dict[str, Any] | None:
        try:
            with self._calling():
                found: dict[str, Any] = call(
                    GROUP, VERSION, self.namespace, REQUESTS, name, _request_timeout=TIMEOUT
                )
        except CliError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def patch_request_status(self, name: str, operations: Sequence[Mapping[str, Any]]) -> None:
        """A JSON patch (RFC 6902) on the status subresource."""
        with self._calling():
            self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                self.namespace,
                REQUESTS,
                name,
                [dict(op) for op in operations],
                _content_type=JSON_PATCH,
                _request_timeout=TIMEOUT,
            )

    def delete_request(self, name: str) -> bool:
        """Delete; False when it was already gone."""
        try:
            with self._calling():
                self._custom.delete_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, REQUESTS, name, _request_timeout=TIMEOUT
                )
        except CliError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def list_requests(self, *, all_namespaces: bool) -> list[dict[str, Any]]:
        return self._list(REQUESTS, all_namespaces=all_namespaces)

    # -- JitPolicies ----------------------------------------------------------------------

    def list_policies(self, *, all_namespaces: bool) -> list[dict[str, Any]] | None:
        """Policies, or None when the caller may not list them (then approvals show n only)."""
        try:
            return self._list(POLICIES, all_namespaces=all_namespaces)
        except CliError as exc:
            if exc.status in (401, 403, 404):
                return None
            raise

    def get_policy(self, name: str) -> dict[str, Any] | None:
        """The policy, or None when it is missing or not readable by the caller."""
        try:
            with self._calling():
                found: dict[str, Any] = self._custom.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, POLICIES, name, _request_timeout=TIMEOUT
                )
        except CliError as exc:
            if exc.status in (401, 403, 404):
                return None
            raise
        return found

    def _list(self, plural: str, *, all_namespaces: bool) -> list[dict[str, Any]]:
        with self._calling():
            if all_namespaces:
                found = self._custom.list_cluster_custom_object(
                    GROUP, VERSION, plural, _request_timeout=TIMEOUT
                )
            else:
                found = self._custom.list_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, plural, _request_timeout=TIMEOUT
                )
        return list(found.get("items") or [])

    # -- any of our kinds (JitAccessSchedules) --------------------------------------------

    def create_object(self, plural: str, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._calling():
            created: dict[str, Any] = self._custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, dict(body), _request_timeout=TIMEOUT
            )
        return created

    def get_object(self, plural: str, name: str, *, status: bool = False) -> dict[str, Any] | None:
        """The object (through its status subresource with ``status``), or None if absent."""
        call = (
            self._custom.get_namespaced_custom_object_status
            if status
            else self._custom.get_namespaced_custom_object
        )
        try:
            with self._calling():
                found: dict[str, Any] = call(
                    GROUP, VERSION, self.namespace, plural, name, _request_timeout=TIMEOUT
                )
        except CliError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def merge_patch(self, plural: str, name: str, patch: Mapping[str, Any]) -> None:
        with self._calling():
            self._custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name, dict(patch), _request_timeout=TIMEOUT
            )

    def patch_object_status(
        self, plural: str, name: str, operations: Sequence[Mapping[str, Any]]
    ) -> None:
        """A JSON patch (RFC 6902) on the status subresource."""
        with self._calling():
            self._custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                self.namespace,
                plural,
                name,
                [dict(op) for op in operations],
                _content_type=JSON_PATCH,
                _request_timeout=TIMEOUT,
            )

    def list_objects(self, plural: str, *, all_namespaces: bool) -> list[dict[str, Any]]:
        return self._list(plural, all_namespaces=all_namespaces)

    # -- Events ---------------------------------------------------------------------------

    def events(self, name: str) -> list[EventLine]:
        """Core/v1 Events about the request (what the operator records), oldest first."""
        core = _k8s.client.CoreV1Api(self._api)
        with self._calling():
            found = core.list_namespaced_event(
                self.namespace,
                field_selector=f"involvedObject.kind={KIND},involvedObject.name={name}",
                _request_timeout=TIMEOUT,
            )
        events = [_event(item) for item in found.items or ()]
        return sorted(events, key=lambda e: e.last_seen or datetime.min.replace(tzinfo=UTC))


def _event(item: Any) -> EventLine:
    last = item.last_timestamp or item.event_time or item.metadata.creation_timestamp
    return EventLine(
        type=str(item.type or ""),
        reason=str(item.reason or ""),
        message=str(item.message or ""),
        count=int(item.count or 1),
        last_seen=last.astimezone(UTC) if isinstance(last, datetime) else None,
    )


@contextmanager
def connect(connection: Connection, env: Mapping[str, str] | None = None) -> Iterator[Cluster]:
    """A :class:`Cluster` for the command; its connection pool is closed afterwards."""
    kubeconfig, configuration = resolve(connection, env)
    api_client = _k8s.client.ApiClient(configuration)
    try:
        yield Cluster(kubeconfig, api_client)
    finally:
        api_client.close()
