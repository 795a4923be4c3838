"""deploy/components added to the overlays they support render with `kubectl kustomize`, install
on a fresh API server with server-side apply (everything but cert-manager's kinds, whose CRDs no
cluster here has) and re-apply unchanged; the static webhook configurations are the ones the
operator's kopf handlers would configure; names, ports, certificates and settings hold together;
the RBAC is what each component needs and no more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from azure_jit_operator.config import Settings
from tests.support.components import (
    COMPONENTS,
    PRODUCTION,
    WEBHOOK_CONFIGURATION_KINDS,
    WEBHOOK_CONFIGURATION_NAME,
    WEBHOOK_SERVICE,
    is_cert_manager,
    kinds,
    operator_webhooks,
    render_composed,
    semantics,
    without_cert_manager,
)
from tests.support.controlplane import ControlPlane, start_control_plane
from tests.support.deploy import (
    OPERATOR_NAMESPACE,
    SERVICE_ACCOUNT,
    WATCHED_NAMESPACE,
    Manifest,
    apply_server_side,
    container,
    find,
    install,
    literal_env,
    render,
    rules_of,
)

# (id, overlay, components): every component with each overlay it supports, and the
# production overlay (cluster-wide + webhooks-cert-manager).
COMBINATIONS = [
    ("cluster-wide + webhooks-cert-manager", "cluster-wide", ["webhooks-cert-manager"]),
    ("cluster-wide + webhooks-managed", "cluster-wide", ["webhooks-managed"]),
    ("cluster-wide + namespace-credentials", "cluster-wide", ["namespace-credentials"]),
    ("single-namespace + webhooks-cert-manager", "single-namespace", ["webhooks-cert-manager"]),
    ("single-namespace + webhooks-managed", "single-namespace", ["webhooks-managed"]),
    (
        "single-namespace + namespace-credentials-single-namespace",
        "single-namespace",
        ["namespace-credentials-single-namespace"],
    ),
    ("demo + webhooks-cert-manager", "demo", ["webhooks-cert-manager"]),
    (
        "cluster-wide + webhooks-cert-manager + namespace-credentials",
        "cluster-wide",
        ["webhooks-cert-manager", "namespace-credentials"],
    ),
    ("the production overlay", "production", []),
]
EVERY_COMBINATION = pytest.mark.parametrize(
    "combination", [pytest.param(c[0], id=c[0]) for c in COMBINATIONS]
)
CERT_MANAGER = [
    c[0] for c in COMBINATIONS if "webhooks-cert-manager" in c[2] or c[1] == "production"
]
MANAGED = [c[0] for c in COMBINATIONS if "webhooks-managed" in c[2]]
WITH_WEBHOOKS = CERT_MANAGER + MANAGED


@pytest.fixture(scope="module")
def rendered(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[Manifest]]:
    out: dict[str, list[Manifest]] = {}
    for name, overlay, components in COMBINATIONS:
        if overlay == "production":
            out[name] = render(control_plane, PRODUCTION)
        else:
            work = tmp_path_factory.mktemp("kustomization")
            out[name] = render_composed(control_plane, work, overlay, components)
    return out


@pytest.fixture(scope="module")
def fresh_cluster(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    """An API server of its own with the CRDs installed as docs/install.md says (the plain
    cluster-wide overlay after them); each combination is then applied on top."""
    with start_control_plane(control_plane.bin_dir, crd_dir=None) as plane:
        plane.kubectl("create", "namespace", WATCHED_NAMESPACE, check=True)
        install(plane, "cluster-wide")
        yield plane


def _settings(objects: list[Manifest]) -> Settings:
    """What the operator makes of the rendered Deployment's environment (it validates)."""
    return Settings.from_env(literal_env(container(find(objects, "Deployment"))))


def _webhook_configurations(objects: list[Manifest]) -> dict[str, Manifest]:
    return {o["kind"]: o for o in kinds(objects, *WEBHOOK_CONFIGURATION_KINDS)}


def _pod_spec(objects: list[Manifest]) -> dict[str, Any]:
    spec: dict[str, Any] = find(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


# --------------------------------------------------------------------------- every combination


@EVERY_COMBINATION
def test_every_object_but_cert_managers_is_accepted_with_server_side_apply_and_reapplies_unchanged(
    fresh_cluster: ControlPlane, rendered: dict[str, list[Manifest]], combination: str
) -> None:
    applied = without_cert_manager(rendered[combination])
    apply_server_side(fresh_cluster, applied)
    got = fresh_cluster.kubectl(
        "get", "--filename=-", "--output=name", input=yaml.safe_dump_all(applied)
    )
    assert got.returncode == 0, got.stderr
    assert len(got.stdout.split()) == len(applied)
    again = apply_server_side(fresh_cluster, applied)
    assert again.count("serverside-applied") == len(applied)


@EVERY_COMBINATION
def test_the_operator_accepts_the_rendered_settings(
    rendered: dict[str, list[Manifest]], combination: str
) -> None:
    settings = _settings(rendered[combination])
    _, overlay, components = next(c for c in COMBINATIONS if c[0] == combination)
    expected_webhooks = (
        "external"
        if "webhooks-cert-manager" in components or overlay == "production"
        else "managed"
        if "webhooks-managed" in components
        else "off"
    )
    assert settings.webhooks == expected_webhooks
    credentials = any(c.startswith("namespace-credentials") for c in components)
    assert settings.namespace_credentials == ("optional" if credentials else "off")


@EVERY_COMBINATION
def test_component_rbac_names_every_verb_and_resource_and_binds_only_the_operator(
    rendered: dict[str, list[Manifest]], combination: str
) -> None:
    objects = rendered[combination]
    for rule in rules_of(objects):
        for field in ("verbs", "resources", "apiGroups"):
            assert "*" not in rule.get(field, []), rule
        if "secrets" in rule["resources"]:
            # The namespace credential or the approvers' webhook URL: one Secret name, `get`.
            assert rule in [
                {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": [name],
                    "verbs": ["get"],
                }
                for name in ("azure-jit-credential", "azure-jit-notify")
            ], rule
    subjects = {
        (s["kind"], s["namespace"], s["name"])
        for o in kinds(objects, "RoleBinding", "ClusterRoleBinding")
        for s in o["subjects"]
    }
    assert subjects == {("ServiceAccount", OPERATOR_NAMESPACE, SERVICE_ACCOUNT)}
    roles = {(o["kind"], o["metadata"]["name"]) for o in kinds(objects, "Role", "ClusterRole")}
    for binding in kinds(objects, "RoleBinding", "ClusterRoleBinding"):
        ref = binding["roleRef"]
        assert (ref["kind"], ref["name"]) in roles, f"{binding['metadata']['name']} binds nothing"


# --------------------------------------------------------------------------- webhooks


@pytest.mark.parametrize("combination", CERT_MANAGER)
def test_the_static_webhook_configurations_are_what_the_operators_handlers_register(
    rendered: dict[str, list[Manifest]], combination: str
) -> None:
    """kopf's own build_webhooks over the handlers the operator registers: the webhook names,
    rules (with the jitaccessrequests/status subresource), operations, failure policies, side
    effects and paths /<handler id> of its managed mode, one configuration kind each."""
    static = _webhook_configurations(rendered[combination])
    assert set(static) == set(WEBHOOK_CONFIGURATION_KINDS)
    service = static["ValidatingWebhookConfiguration"]["webhooks"][0]["clientConfig"]["service"]
    expected = operator_webhooks(client_config={"service": {**service, "path": ""}})
    for kind, configuration in static.items():
        assert configuration["metadata"]["name"] == WEBHOOK_CONFIGURATION_NAME
        got = [semantics(w) for w in configuration["webhooks"]]
        assert got == [semantics(w) for w in expected[kind]], kind
        for webhook, kopfs in zip(configuration["webhooks"], expected[kind], strict=True):
            assert webhook["clientConfig"]["service"] == kopfs["clientConfig"]["service"]
            assert webhook["admissionReviewVersions"] == ["v1"]
            assert set(webhook["admissionReviewVersions"]) <= set(kopfs["admissionReviewVersions"])
            assert 1 <= webhook["timeoutSeconds"] <= kopfs["timeoutSeconds"]


def test_webhooks_guarding_who_asked_and_who_approved_fail_closed_and_the_policy_check_not(
    rendered: dict[str, list[Manifest]],
) -> None:
    static = _webhook_configurations(rendered["the production overlay"])
    policies = {
        (w["name"].split(".")[0], tuple(w["rules"][0]["resources"])): w["failurePolicy"]
        for c in static.values()
        for w in c["webhooks"]
    }
    assert policies == {
        ("stamp-requester", ("jitaccessrequests",)): "Fail",
        ("verify-requester", ("jitaccessrequests",)): "Fail",
        ("check-against-policy", ("jitaccessrequests",)): "Ignore",
        ("guard-approvals", ("jitaccessrequests/status",)): "Fail",
        ("stamp-schedule-requester", ("jitaccessschedules",)): "Fail",
        ("verify-schedule-requester", ("jitaccessschedules",)): "Fail",
        ("guard-schedule-approvals", ("jitaccessschedules/status",)): "Fail",
    }


@pytest.mark.parametrize("combination", CERT_MANAGER)
def test_cert_manager_issues_the_serving_certificate_the_operator_mounts_and_the_api_server_trusts(
    rendered: dict[str, list[Manifest]], combination: str
) -> None:
    objects = rendered[combination]
    issued = sorted(
        (o["kind"], o["metadata"]["namespace"], o["metadata"]["name"])
        for o in objects
        if is_cert_manager(o)
    )
    assert issued == [
        ("Certificate", OPERATOR_NAMESPACE, "azure-jit-operator-webhook"),
        ("Certificate", OPERATOR_NAMESPACE, "azure-jit-operator-webhook-ca"),
        ("Issuer", OPERATOR_NAMESPACE, "azure-jit-operator-selfsigned"),
        ("Issuer", OPERATOR_NAMESPACE, "azure-jit-operator-webhook-ca"),
    ]
    selfsigned = find(objects, "Issuer", "azure-jit-operator-selfsigned")
    ca = find(objects, "Certificate", "azure-jit-operator-webhook-ca")
    ca_issuer = find(objects, "Issuer", "azure-jit-operator-webhook-ca")
    serving = find(objects, "Certificate", "azure-jit-operator-webhook")
    # The chain: self-signed -> CA certificate -> CA issuer -> serving certificate.
    assert selfsigned["spec"] == {"selfSigned": {}}
    assert ca["spec"]["isCA"] is True
    assert ca["spec"]["issuerRef"]["name"] == selfsigned["metadata"]["name"]
    assert ca_issuer["spec"] == {"ca": {"secretName": ca["spec"]["secretName"]}}
    assert serving["spec"]["issuerRef"] == {
        "group": "cert-manager.io",
        "kind": "Issuer",
        "name": ca_issuer["metadata"]["name"],
    }
    assert not serving["spec"].get("isCA")
    assert "server auth" in serving["spec"]["usages"]
    # Valid for the Service the configurations call.
    service = find(objects, "Service", WEBHOOK_SERVICE)
    dns = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    assert serving["spec"]["dnsNames"] == [dns, f"{dns}.cluster.local"]
    for configuration in _webhook_configurations(objects).values():
        annotations = configuration["metadata"]["annotations"]
        assert annotations["cert-manager.io/inject-ca-from"] == (
            f"{serving['metadata']['namespace']}/{serving['metadata']['name']}"
        )
        for webhook in configuration["webhooks"]:
            ref = webhook["clientConfig"]["service"]
            assert (ref["namespace"], ref["name"]) == (
                service["metadata"]["namespace"],
                service["metadata"]["name"],
            )
            assert ref["port"] in [p["port"] for p in service["spec"]["ports"]]
    # Mounted read-only where the operator reads tls.crt, tls.key and ca.crt.
    settings = _settings(objects)
    pod = _pod_spec(objects)
    volume = next(
        v
        for v in pod["volumes"]
        if v.get("secret", {}).get("secretName") == serving["spec"]["secretName"]
    )
    mount = next(
        m
        for m in container(find(objects, "Deployment"))["volumeMounts"]
        if m["name"] == volume["name"]
    )
    assert mount["readOnly"] is True
    assert Path(mount["mountPath"]) == settings.webhook_cert_dir
    # The key is readable by the operator's group only.
    assert volume["secret"]["defaultMode"] == 0o440
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]


@pytest.mark.parametrize("combination", WITH_WEBHOOKS)
def test_the_webhook_service_reaches_the_port_the_operator_serves_on(
    rendered: dict[str, list[Manifest]], combination: str
) -> None:
    objects = rendered[combination]
    settings = _settings(objects)
    operator = container(find(objects, "Deployment"))
    port = next(p for p in operator["ports"] if p["name"] == "webhook")
    assert port["containerPort"] == settings.webhook_port == 9443
    assert settings.bind_address == "0.0.0.0", "the API server calls the pod IP"
    service = find(objects, "Service", WEBHOOK_SERVICE)
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["webhook"]
    labels = find(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    if combination in MANAGED:
        # kopf's managed configurations call https://<host>:<port>/<id>: the Service's own
        # DNS name and the port the operator listens on.
        name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
        assert settings.webhook_host == f"{name}.{namespace}.svc"
        assert [p["port"] for p in service["spec"]["ports"]] == [settings.webhook_port]
        assert not _webhook_configurations(objects), "the operator keeps them itself"
    else:
        assert [p["port"] for p in service["spec"]["ports"]] == [443]


@pytest.mark.parametrize("combination", WITH_WEBHOOKS)
def test_cert_manager_webhooks_keep_two_replicas_and_managed_ones_run_one(
    rendered: dict[str, list[Manifest]], combination: str
) -> None:
    """cert-manager: both replicas serve admission with the same certificate, the standby
    judging requests like the active one. Managed: each process makes its own CA, so one pod
    (and no PodDisruptionBudget, which would then block every drain)."""
    objects = rendered[combination]
    managed = combination in MANAGED
    alone = managed or combination.startswith("demo")  # the demo's pod carries its emulator
    assert find(objects, "Deployment")["spec"]["replicas"] == (1 if alone else 2)
    assert bool(kinds(objects, "PodDisruptionBudget")) == (not managed)


@pytest.mark.parametrize("combination", CERT_MANAGER[:1])
def test_the_operator_pod_with_its_certificate_volume_passes_the_restricted_pod_security_standard(
    fresh_cluster: ControlPlane, rendered: dict[str, list[Manifest]], combination: str
) -> None:
    apply_server_side(fresh_cluster, without_cert_manager(rendered[combination]))
    template = find(rendered[combination], "Deployment")["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pss-check", "namespace": OPERATOR_NAMESPACE, **template["metadata"]},
        "spec": template["spec"],
    }
    created = fresh_cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pod)
    )
    assert created.returncode == 0, created.stderr
    assert "violate" not in created.stderr + created.stdout


# --------------------------------------------------------------------------- RBAC per component


def _component_rules(name: str) -> list[dict[str, Any]]:
    """The rules a component's own files grant (nested components included)."""
    found: list[dict[str, Any]] = []
    directory = COMPONENTS / name
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    for nested in kustomization.get("components", []):
        found += _component_rules((directory / nested).resolve().name)
    for resource in kustomization.get("resources", []):
        for doc in yaml.safe_load_all((directory / resource).read_text()):
            if doc and doc["kind"] in {"Role", "ClusterRole"}:
                found += doc["rules"]
    return found


SUBJECT_ACCESS_REVIEWS = {
    "apiGroups": ["authorization.k8s.io"],
    "resources": ["subjectaccessreviews"],
    "verbs": ["create"],
}
READ_POLICIES = {"apiGroups": ["azurejit.dev"], "resources": ["jitpolicies"], "verbs": ["get"]}
CONFIGURATIONS = ["mutatingwebhookconfigurations", "validatingwebhookconfigurations"]


@pytest.mark.parametrize(
    ("component", "expected"),
    [
        pytest.param(
            "webhooks-cert-manager",
            [SUBJECT_ACCESS_REVIEWS, READ_POLICIES],
            id="cert-manager: SubjectAccessReviews and reading policies, no webhook configurations",
        ),
        pytest.param(
            "webhooks-managed",
            [
                {
                    "apiGroups": ["admissionregistration.k8s.io"],
                    "resources": CONFIGURATIONS,
                    "verbs": ["create"],
                },
                {
                    "apiGroups": ["admissionregistration.k8s.io"],
                    "resources": CONFIGURATIONS,
                    "resourceNames": [WEBHOOK_CONFIGURATION_NAME],
                    "verbs": ["patch"],
                },
                SUBJECT_ACCESS_REVIEWS,
                READ_POLICIES,
            ],
            id="managed: configurations created and patched, SubjectAccessReviews, policies read",
        ),
        pytest.param(
            "namespace-credentials",
            [
                {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": ["azure-jit-credential"],
                    "verbs": ["get"],
                }
            ],
            id="namespace credentials: get one Secret name",
        ),
        pytest.param(
            "namespace-credentials-single-namespace",
            [
                {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": ["azure-jit-credential"],
                    "verbs": ["get"],
                }
            ],
            id="namespace credentials for one namespace: get one Secret name",
        ),
    ],
)
def test_each_component_grants_exactly_what_its_feature_calls(
    component: str, expected: list[dict[str, Any]]
) -> None:
    assert sorted(map(repr, _component_rules(component))) == sorted(map(repr, expected))


def test_namespace_credentials_for_one_namespace_are_granted_in_the_watched_namespace_only(
    rendered: dict[str, list[Manifest]],
) -> None:
    objects = rendered["single-namespace + namespace-credentials-single-namespace"]
    watched = _settings(objects).namespaces
    role = find(objects, "Role", "azure-jit-operator-namespace-credentials")
    binding = find(objects, "RoleBinding", "azure-jit-operator-namespace-credentials")
    assert (role["metadata"]["namespace"],) == (binding["metadata"]["namespace"],) == watched
    assert not [
        o
        for o in kinds(objects, "ClusterRole")
        if any("secrets" in r["resources"] for r in o["rules"])
    ]
