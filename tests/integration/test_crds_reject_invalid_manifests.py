"""The API server itself refuses invalid JitPolicies and JitAccessRequests (OpenAPI schema and
CEL rules in crds/), with a message that tells the user what to fix, and stores nothing."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from kubernetes import client as k8s

from azure_jit_operator.domain.azure_limits import name_limit_violations
from azure_jit_operator.domain.prefixes import IPV6_UNSUPPORTED
from tests.support.controlplane import ControlPlane

GROUP, VERSION = "azurejit.dev", "v1alpha1"
PLURALS = {
    "JitPolicy": "jitpolicies",
    "JitAccessRequest": "jitaccessrequests",
    "JitAccessSchedule": "jitaccessschedules",
}

Manifest = dict[str, Any]


def _policy() -> Manifest:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JitPolicy",
        "metadata": {"name": "web-admins"},
        "spec": {
            "azure": {
                "subscriptionId": "00000000-0000-0000-0000-000000000000",
                "resourceGroup": "rg-web",
                "location": "westeurope",
            },
            "virtualMachines": [
                {
                    "name": "vm-web-01",
                    "ports": [
                        {
                            "number": 22,
                            "protocol": "TCP",
                            "allowedSourceAddressPrefixes": ["198.51.100.0/24"],
                            "maxRequestAccessDuration": "3h",
                        }
                    ],
                }
            ],
        },
    }


def _request() -> Manifest:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JitAccessRequest",
        "metadata": {"name": "ssh-inc-4711"},
        "spec": {
            "policyName": "web-admins",
            "virtualMachine": "vm-web-01",
            "ports": [{"number": 22, "sourceAddressPrefix": "198.51.100.7/32"}],
            "duration": "1h",
            "justification": "INC-4711",
        },
    }


def _port(manifest: Manifest) -> dict[str, Any]:
    port: dict[str, Any] = manifest["spec"]["virtualMachines"][0]["ports"][0]
    return port


def _selector_port() -> dict[str, Any]:
    return {
        "number": 22,
        "allowedSourceAddressPrefixes": ["198.51.100.0/24"],
        "maxRequestAccessDuration": "3h",
    }


@dataclass(frozen=True)
class Invalid:
    id: str
    base: Callable[[], Manifest]
    change: Callable[[Manifest], None]
    fragment: str  # must appear in the API server's message
    absent: str | None = None  # must not appear in it


def _set(**fields: Any) -> Callable[[Manifest], None]:
    """Change ``spec`` fields; a value of ``None`` removes the field."""

    def change(manifest: Manifest) -> None:
        for name, value in fields.items():
            if value is None:
                del manifest["spec"][name]
            else:
                manifest["spec"][name] = value

    return change


def _set_port(**fields: Any) -> Callable[[Manifest], None]:
    def change(manifest: Manifest) -> None:
        _port(manifest).update(fields)

    return change


def _set_azure(**fields: Any) -> Callable[[Manifest], None]:
    def change(manifest: Manifest) -> None:
        for name, value in fields.items():
            if value is None:
                del manifest["spec"]["azure"][name]
            else:
                manifest["spec"]["azure"][name] = value

    return change


def _duplicate_vm(manifest: Manifest) -> None:
    vms = manifest["spec"]["virtualMachines"]
    vms.append(copy.deepcopy(vms[0]))


def _duplicate_policy_port(manifest: Manifest) -> None:
    ports = manifest["spec"]["virtualMachines"][0]["ports"]
    ports.append({**copy.deepcopy(ports[0]), "protocol": "UDP"})


def _duplicate_request_port(manifest: Manifest) -> None:
    ports = manifest["spec"]["ports"]
    ports.append({**ports[0], "sourceAddressPrefix": "198.51.100.8"})


def _set_request_prefix(prefix: str) -> Callable[[Manifest], None]:
    def change(manifest: Manifest) -> None:
        manifest["spec"]["ports"][0]["sourceAddressPrefix"] = prefix

    return change


def _drop_spec(manifest: Manifest) -> None:
    del manifest["spec"]


def _rename_vm(name: str) -> Callable[[Manifest], None]:
    def change(manifest: Manifest) -> None:
        manifest["spec"]["virtualMachines"][0]["name"] = name

    return change


def _add_vm(name: str) -> Callable[[Manifest], None]:
    def change(manifest: Manifest) -> None:
        manifest["spec"]["virtualMachines"].append({**_port_vm(), "name": name})

    return change


def _notify(name: str = "azure-jit-notify", key: str | None = "slack") -> dict[str, Any]:
    ref: dict[str, Any] = {"name": name}
    if key is not None:
        ref["key"] = key
    return {"mode": "Manual", "notify": {"webhook": {"secretKeyRef": ref}}}


def _both(*changes: Callable[[Manifest], None]) -> Callable[[Manifest], None]:
    def change(manifest: Manifest) -> None:
        for one in changes:
            one(manifest)

    return change


VM_47 = "vm-" + "w" * 44  # with "web-admins" (10): 57 characters, one more than Azure JIT allows
VM_46 = "vm-" + "w" * 43  # with "web-admins" (10): exactly 56
POLICY_50 = "p" * 50

PREFIX_MESSAGE = "must be '*', an IP address (198.51.100.7) or a CIDR range"
POLICY_DURATION = "must lie between 5m and 24h (Azure's limits for JIT access)"
REQUEST_DURATION = "must lie between 1m and 24h"
DURATION_PATTERN = "should match '^([0-9]{1,5}h)?([0-9]{1,5}m)?([0-9]{1,5}s)?$'"

INVALID = [
    # ---------------------------------------------------------------- JitPolicy
    Invalid(
        "a policy port 0 is below the port range",
        _policy,
        _set_port(number=0),
        "spec.virtualMachines[0].ports[0].number: Invalid value: 0: "
        "spec.virtualMachines[0].ports[0].number in body should be greater than or equal to 1",
    ),
    Invalid(
        "a policy port 65536 is above the port range",
        _policy,
        _set_port(number=65536),
        "should be less than or equal to 65535",
    ),
    Invalid(
        "a prefix length of 33 is no IPv4 CIDR",
        _policy,
        _set_port(allowedSourceAddressPrefixes=["198.51.100.0/33"]),
        PREFIX_MESSAGE,
    ),
    Invalid(
        "a CIDR with host bits set is refused so nobody misreads its size",
        _policy,
        _set_port(allowedSourceAddressPrefixes=["198.51.100.7/24"]),
        PREFIX_MESSAGE,
    ),
    Invalid(
        "a host name is no source prefix",
        _policy,
        _set_port(allowedSourceAddressPrefixes=["office.example.com"]),
        PREFIX_MESSAGE,
    ),
    Invalid(
        "an IPv6 range is refused because Azure JIT refuses IPv6 sources",
        _policy,
        _set_port(allowedSourceAddressPrefixes=["198.51.100.0/24", "2001:db8::/48"]),
        f"spec.virtualMachines[0].ports[0].allowedSourceAddressPrefixes[1]: Invalid value: "
        f'"2001:db8::/48": {IPV6_UNSUPPORTED}',
    ),
    Invalid(
        "an IPv4-mapped IPv6 address is refused as IPv6: write the IPv4 address",
        _policy,
        _set_port(allowedSourceAddressPrefixes=["::ffff:198.51.100.7"]),
        IPV6_UNSUPPORTED,
    ),
    Invalid(
        "a VM selector's port template refuses IPv6 sources too",
        _policy,
        _set(
            vmSelector={
                "all": True,
                "ports": [{**_selector_port(), "allowedSourceAddressPrefixes": ["2001:db8::7"]}],
            }
        ),
        f"spec.vmSelector.ports[0].allowedSourceAddressPrefixes[0]: Invalid value: "
        f'"2001:db8::7": {IPV6_UNSUPPORTED}',
    ),
    Invalid(
        "a star next to specific prefixes is ambiguous",
        _policy,
        _set_port(allowedSourceAddressPrefixes=["*", "198.51.100.0/24"]),
        "'*' already allows every source: list it alone or list specific prefixes",
    ),
    Invalid(
        "the same prefix twice in one port is a duplicate",
        _policy,
        _set_port(allowedSourceAddressPrefixes=["198.51.100.0/24", "198.51.100.0/24"]),
        'Duplicate value: "198.51.100.0/24"',
    ),
    Invalid(
        "a port without allowed prefixes can never be opened",
        _policy,
        _set_port(allowedSourceAddressPrefixes=[]),
        "should have at least 1 items",
    ),
    Invalid(
        "a maximum duration of zero is below Azure's five minutes",
        _policy,
        _set_port(maxRequestAccessDuration="0m"),
        POLICY_DURATION,
    ),
    Invalid(
        "a maximum duration of four minutes is below Azure's five minutes",
        _policy,
        _set_port(maxRequestAccessDuration="4m"),
        POLICY_DURATION,
    ),
    Invalid(
        "a maximum duration of 25 hours is above Azure's 24 hours",
        _policy,
        _set_port(maxRequestAccessDuration="25h"),
        POLICY_DURATION,
    ),
    Invalid(
        "a maximum duration in words is not a duration",
        _policy,
        _set_port(maxRequestAccessDuration="three hours"),
        DURATION_PATTERN,
    ),
    Invalid(
        "an ISO 8601 duration is Azure's format, not the manifest's",
        _policy,
        _set_port(maxRequestAccessDuration="PT3H"),
        DURATION_PATTERN,
    ),
    Invalid(
        "ICMP is no JIT protocol",
        _policy,
        _set_port(protocol="ICMP"),
        'Unsupported value: "ICMP": supported values: "TCP", "UDP", "*"',
    ),
    Invalid(
        "the same virtual machine listed twice is a duplicate",
        _policy,
        _duplicate_vm,
        "spec.virtualMachines[1]: Duplicate value",
    ),
    Invalid(
        "the same port number twice on one machine is a duplicate even with another protocol",
        _policy,
        _duplicate_policy_port,
        "spec.virtualMachines[0].ports[1]: Duplicate value",
    ),
    Invalid(
        "a virtual machine name ending in a dot is no Azure VM name",
        _policy,
        _rename_vm("vm-web-01."),
        "spec.virtualMachines[0].name in body should match",
    ),
    Invalid(
        "a policy without virtual machines protects nothing",
        _policy,
        _set(virtualMachines=[]),
        "spec.virtualMachines: Invalid value: 0: spec.virtualMachines in body should have "
        "at least 1 items",
    ),
    Invalid(
        "a policy must say which virtual machines it protects",
        _policy,
        _set(virtualMachines=None),
        "set virtualMachines (VMs by name), vmSelector (VMs by tags), or both",
    ),
    Invalid(
        "a VM selector needs tags or all, not both",
        _policy,
        _set(
            vmSelector={"matchTags": {"jit": "enabled"}, "all": True, "ports": [_selector_port()]}
        ),
        "set exactly one of matchTags (VMs carrying all these tags) or all: true",
    ),
    Invalid(
        "a VM selector needs tags or all, not neither",
        _policy,
        _set(vmSelector={"ports": [_selector_port()]}),
        "set exactly one of matchTags (VMs carrying all these tags) or all: true",
    ),
    Invalid(
        "a VM selector cannot select by an empty set of tags",
        _policy,
        _set(vmSelector={"matchTags": {}, "ports": [_selector_port()]}),
        "should have at least 1 properties",
    ),
    Invalid(
        "a VM selector's port template is validated like any port",
        _policy,
        _set(
            vmSelector={
                "all": True,
                "ports": [{**_selector_port(), "maxRequestAccessDuration": "2d"}],
            }
        ),
        "spec.vmSelector.ports[0].maxRequestAccessDuration",
    ),
    Invalid(
        "a policy must name its subscription",
        _policy,
        _set_azure(subscriptionId=None),
        "spec.azure.subscriptionId: Required value",
    ),
    Invalid(
        "a subscription id that is no GUID is refused",
        _policy,
        _set_azure(subscriptionId="my-subscription"),
        "spec.azure.subscriptionId in body should match",
    ),
    Invalid(
        "a resource group name of 91 characters is longer than Azure allows",
        _policy,
        _set_azure(resourceGroup="r" * 91),
        "spec.azure.resourceGroup: Too long: may not be more than 90 bytes",
    ),
    Invalid(
        "a display name such as West Europe is no Azure location",
        _policy,
        _set_azure(location="West Europe"),
        "spec.azure.location in body should match '^[a-z0-9]+$'",
    ),
    Invalid(
        "Keep is no deletion policy",
        _policy,
        _set(deletionPolicy="Keep"),
        'Unsupported value: "Keep": supported values: "Delete", "Orphan"',
    ),
    Invalid(
        "a misspelt field is an error rather than silently dropped",
        _policy,
        _set(deletionPolicie="Orphan"),
        'unknown field "spec.deletionPolicie"',
    ),
    Invalid(
        "a VM name and the default policy name (metadata.name) of 57 characters are refused",
        _policy,
        _rename_vm(VM_47),
        "spec.virtualMachines: Invalid value: " + name_limit_violations("web-admins", [VM_47])[0],
    ),
    Invalid(
        "a VM name and spec.azure.policyName of 59 characters are refused",
        _policy,
        _set_azure(policyName=POLICY_50),
        name_limit_violations(POLICY_50, ["vm-web-01"])[0],
    ),
    Invalid(
        "of several VMs too long for the policy name the first is named, and how many",
        _policy,
        _both(_add_vm(VM_47), _add_vm("vm-" + "x" * 50)),
        name_limit_violations("web-admins", [VM_47])[0]
        + " (2 listed virtual machines are too long in all)",
    ),
    Invalid(
        "a policy without a spec is refused",
        _policy,
        _drop_spec,
        "spec: Required value",
    ),
    # ---------------------------------------------------------------- JitAccessRequest
    Invalid(
        "a request duration of zero opens nothing",
        _request,
        _set(duration="0s"),
        REQUEST_DURATION,
    ),
    Invalid(
        "a request duration of 25 hours is above Azure's 24 hours",
        _request,
        _set(duration="25h"),
        REQUEST_DURATION,
    ),
    Invalid(
        "a request duration of soon is not a duration",
        _request,
        _set(duration="soon"),
        DURATION_PATTERN,
    ),
    Invalid(
        "a request source with a prefix length of 40 is no IPv4 CIDR",
        _request,
        _set_request_prefix("198.51.100.7/40"),
        "must be '*', an IP address (198.51.100.7) or a CIDR range",
    ),
    Invalid(
        "a request source with host bits set is refused",
        _request,
        _set_request_prefix("198.51.100.7/24"),
        "with no host bits set (198.51.100.0/28)",
    ),
    Invalid(
        "a request from an IPv6 address is refused because Azure JIT refuses IPv6 sources",
        _request,
        _set_request_prefix("2001:db8::7"),
        f'spec.ports[0].sourceAddressPrefix: Invalid value: "2001:db8::7": {IPV6_UNSUPPORTED}',
    ),
    Invalid(
        "a request from an IPv6 range with host bits set gets only the IPv6 refusal",
        _request,
        _set_request_prefix("2001:db8::7/64"),
        f'Invalid value: "2001:db8::7/64": {IPV6_UNSUPPORTED}',
        absent=PREFIX_MESSAGE,
    ),
    Invalid(
        "a request from an IPv4-mapped IPv6 address is refused as IPv6",
        _request,
        _set_request_prefix("::ffff:198.51.100.7"),
        IPV6_UNSUPPORTED,
        absent=PREFIX_MESSAGE,
    ),
    Invalid(
        "a request asking for the same port twice is a duplicate",
        _request,
        _duplicate_request_port,
        "spec.ports[1]: Duplicate value",
    ),
    Invalid(
        "a request port of 70000 is above the port range",
        _request,
        lambda manifest: manifest["spec"]["ports"][0].update(number=70000),
        "spec.ports[0].number in body should be less than or equal to 65535",
    ),
    Invalid(
        "a request without ports opens nothing",
        _request,
        _set(ports=[]),
        "spec.ports in body should have at least 1 items",
    ),
    Invalid(
        "a request needs a justification for the audit trail",
        _request,
        _set(justification=None),
        "spec.justification: Required value",
    ),
    Invalid(
        "a justification of 501 characters is longer than the limit",
        _request,
        _set(justification="x" * 501),
        "spec.justification: Too long: may not be more than 500 bytes",
    ),
    Invalid(
        "a policy name with capitals is no Kubernetes object name",
        _request,
        _set(policyName="Web-Admins"),
        "spec.policyName in body should match",
    ),
    Invalid(
        "a virtual machine name of 65 characters is longer than Azure allows",
        _request,
        _set(virtualMachine="v" * 65),
        "spec.virtualMachine: Too long: may not be more than 64 bytes",
    ),
    # ------------------------------------------------------- extensions and break-glass
    Invalid(
        "an emergency request with a justification of a few characters is refused",
        _request,
        _set(emergency=True, justification="help"),
        "an emergency request needs a justification of at least 10 characters",
    ),
    Invalid(
        "an emergency request cannot extend another request",
        _request,
        _set(emergency=True, extends="ssh-earlier", justification="INC-4711 database down"),
        "an emergency request cannot extend another",
    ),
    Invalid(
        "an extension must name a request by its Kubernetes name",
        _request,
        _set(extends="Ssh_Earlier"),
        "spec.extends in body should match",
    ),
    Invalid(
        "emergency is true or false, not a word",
        _request,
        _set(emergency="yes"),
        "spec.emergency: Invalid value",
    ),
    Invalid(
        "a break-glass maximum of 25 hours is above Azure's 24 hours",
        _policy,
        _set(breakGlass={"maxDuration": "25h"}),
        "spec.breakGlass.maxDuration: Invalid value",
    ),
    Invalid(
        "a break-glass rule without its maximum is refused",
        _policy,
        _set(breakGlass={}),
        "spec.breakGlass.maxDuration: Required value",
    ),
    Invalid(
        "approvers' webhook URL in a Secret the operator may not read",
        _policy,
        _set(approval=_notify(name="slack-webhook")),
        "must be azure-jit-notify: the operator may read only the Secret of that name",
    ),
    Invalid(
        "notifying approvers under a policy that asks nobody to approve",
        _policy,
        _set(approval={**_notify(), "mode": "Automatic"}),
        "notify tells approvers, so it needs mode: Manual",
    ),
    Invalid(
        "a notify without the Secret key that holds the URL",
        _policy,
        _set(approval=_notify(key=None)),
        "spec.approval.notify.webhook.secretKeyRef.key: Required value",
    ),
]


# ---------------------------------------------------------------- JitAccessSchedule


def _schedule() -> Manifest:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JitAccessSchedule",
        "metadata": {"name": "weekday-maintenance"},
        "spec": {
            "schedule": "0 9 * * 1-5",
            "timeZone": "Europe/Berlin",
            "duration": "1h",
            "requestTemplate": {
                "policyName": "web-admins",
                "virtualMachine": "vm-web-01",
                "ports": [{"number": 22, "sourceAddressPrefix": "198.51.100.7/32"}],
                "justification": "CHG-1234",
            },
        },
    }


def _set_template(**fields: Any) -> Callable[[Manifest], None]:
    def change(manifest: Manifest) -> None:
        manifest["spec"]["requestTemplate"].update(fields)

    return change


def _long_schedule_name(manifest: Manifest) -> None:
    manifest["metadata"]["name"] = "s" * 241


INVALID += [
    Invalid(
        "a schedule of four cron fields is refused with how to write one",
        _schedule,
        _set(schedule="0 9 * *"),
        "use five cron fields (minute hour day-of-month month day-of-week)",
    ),
    Invalid(
        "an unknown cron macro is refused with the list of macros",
        _schedule,
        _set(schedule="@fortnightly"),
        "the macros are @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly",
    ),
    Invalid(
        "a schedule window of 25 hours is above Azure's 24 hours",
        _schedule,
        _set(duration="25h"),
        REQUEST_DURATION,
    ),
    Invalid(
        "a time zone with spaces is no IANA name",
        _schedule,
        _set(timeZone="Central European Time"),
        "spec.timeZone in body should match",
    ),
    Invalid(
        "a negative starting deadline is refused",
        _schedule,
        _set(startingDeadlineSeconds=-5),
        "spec.startingDeadlineSeconds in body should be greater than or equal to 0",
    ),
    Invalid(
        "a history limit above 100 is refused",
        _schedule,
        _set(successfulRequestsHistoryLimit=101),
        "spec.successfulRequestsHistoryLimit in body should be less than or equal to 100",
    ),
    Invalid(
        "a schedule's template source from IPv6 is refused as a request's is",
        _schedule,
        _set_template(ports=[{"number": 22, "sourceAddressPrefix": "2001:db8::7"}]),
        IPV6_UNSUPPORTED,
    ),
    Invalid(
        "a schedule without a template opens nothing",
        _schedule,
        _set(requestTemplate=None),
        "spec.requestTemplate: Required value",
    ),
    Invalid(
        "a schedule's template needs a justification",
        _schedule,
        lambda manifest: manifest["spec"]["requestTemplate"].pop("justification"),
        "spec.requestTemplate.justification: Required value",
    ),
    Invalid(
        "a schedule name too long for its requests' names is refused",
        _schedule,
        _long_schedule_name,
        "metadata.name may be at most 240 characters",
    ),
]


def _api_message(exc: k8s.ApiException) -> str:
    try:
        message: str = json.loads(exc.body or "")["message"]
    except (ValueError, KeyError):
        return str(exc.body)
    return message


@pytest.fixture
def custom_objects(control_plane: ControlPlane) -> Iterator[k8s.CustomObjectsApi]:
    with control_plane.api_client() as api:
        yield k8s.CustomObjectsApi(api)


def _create(
    custom_objects: k8s.CustomObjectsApi, namespace: str, manifest: Manifest
) -> dict[str, Any]:
    created = custom_objects.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURALS[manifest["kind"]],
        manifest,
        field_validation="Strict",  # what kubectl sends: unknown fields are errors
    )
    return cast(dict[str, Any], created)


def _get_status(custom_objects: k8s.CustomObjectsApi, namespace: str, kind: str, name: str) -> int:
    try:
        custom_objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], name)
    except k8s.ApiException as exc:
        return int(exc.status or 0)
    return 200


@pytest.mark.parametrize("case", INVALID, ids=[case.id for case in INVALID])
def test_api_server_refuses_invalid_manifest(
    case: Invalid, custom_objects: k8s.CustomObjectsApi, namespace: str
) -> None:
    manifest = case.base()
    case.change(manifest)

    with pytest.raises(k8s.ApiException) as refused:
        _create(custom_objects, namespace, manifest)

    assert refused.value.status in {400, 422}, refused.value.body
    assert case.fragment in _api_message(refused.value)
    assert case.absent is None or case.absent not in _api_message(refused.value)
    name = manifest["metadata"]["name"]
    assert _get_status(custom_objects, namespace, manifest["kind"], name) == 404


@pytest.mark.parametrize(
    "base",
    [_policy, _request, _schedule],
    ids=["a valid policy is stored", "a valid request is stored", "a valid schedule is stored"],
)
def test_the_unchanged_base_manifests_are_accepted(
    base: Callable[[], Manifest], custom_objects: k8s.CustomObjectsApi, namespace: str
) -> None:
    """Guards the table above: each case fails for its own change, not for the base."""
    manifest = base()
    _create(custom_objects, namespace, manifest)
    name = manifest["metadata"]["name"]
    assert _get_status(custom_objects, namespace, manifest["kind"], name) == 200


@dataclass(frozen=True)
class Update:
    id: str
    base: Callable[[], Manifest]
    change: Callable[[Manifest], None]
    fragment: str


UPDATES = [
    Update(
        "a request's duration cannot be stretched after creation",
        _request,
        _set(duration="2h"),
        "spec is immutable: delete this request (which closes its ports) and create a new one",
    ),
    Update(
        "a request cannot be pointed at another machine after creation",
        _request,
        _set(virtualMachine="vm-web-02"),
        "spec is immutable",
    ),
    Update(
        "a request's source cannot be widened after creation",
        _request,
        _set_request_prefix("198.51.100.0/24"),
        "spec is immutable",
    ),
    Update(
        "a policy cannot move to another location",
        _policy,
        _set_azure(location="northeurope"),
        "spec.azure.subscriptionId, resourceGroup and location are immutable",
    ),
    Update(
        "a policy cannot move to another subscription",
        _policy,
        _set_azure(subscriptionId="11111111-1111-1111-1111-111111111111"),
        "spec.azure.subscriptionId, resourceGroup and location are immutable",
    ),
    Update(
        "a policy cannot adopt an Azure policy name later",
        _policy,
        _set_azure(policyName="other-name"),
        "spec.azure.policyName is immutable",
    ),
]


@pytest.mark.parametrize("case", UPDATES, ids=[case.id for case in UPDATES])
def test_api_server_refuses_changing_an_immutable_field(
    case: Update, custom_objects: k8s.CustomObjectsApi, namespace: str
) -> None:
    original = case.base()
    stored = _create(custom_objects, namespace, original)
    changed = copy.deepcopy(stored)
    case.change(changed)
    kind, name = original["kind"], original["metadata"]["name"]

    with pytest.raises(k8s.ApiException) as refused:
        custom_objects.replace_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], name, changed
        )

    assert refused.value.status == 422, refused.value.body
    assert case.fragment in _api_message(refused.value)
    current = cast(
        dict[str, Any],
        custom_objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], name),
    )
    assert current["spec"] == stored["spec"]
    assert current["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]


def test_a_policy_can_still_grow_by_a_virtual_machine(
    custom_objects: k8s.CustomObjectsApi, namespace: str
) -> None:
    """The immutability rules pin where the policy lives, not what it protects."""
    stored = _create(custom_objects, namespace, _policy())
    changed = copy.deepcopy(stored)
    changed["spec"]["virtualMachines"].append({**_port_vm(), "name": "vm-web-02"})

    replaced = cast(
        dict[str, Any],
        custom_objects.replace_namespaced_custom_object(
            GROUP, VERSION, namespace, "jitpolicies", "web-admins", changed
        ),
    )

    assert [vm["name"] for vm in replaced["spec"]["virtualMachines"]] == ["vm-web-01", "vm-web-02"]


def _port_vm() -> dict[str, Any]:
    vm: dict[str, Any] = copy.deepcopy(_policy()["spec"]["virtualMachines"][0])
    return vm


@pytest.mark.parametrize(
    ("metadata_name", "policy_name", "vm_name"),
    [
        pytest.param("web-admins", None, VM_46, id="metadata.name and VM name of exactly 56"),
        pytest.param("web-admins", "p" * 47, "vm-web-01", id="policyName and VM name of 56"),
        pytest.param(
            "web-admins-" + "a" * 60,
            "web-admins",
            VM_46,
            id="a long metadata.name does not count when spec.azure.policyName is set",
        ),
    ],
)
def test_names_of_56_characters_together_are_accepted(
    metadata_name: str,
    policy_name: str | None,
    vm_name: str,
    custom_objects: k8s.CustomObjectsApi,
    namespace: str,
) -> None:
    manifest = _policy()
    manifest["metadata"]["name"] = metadata_name
    if policy_name is not None:
        manifest["spec"]["azure"]["policyName"] = policy_name
    _rename_vm(vm_name)(manifest)

    _create(custom_objects, namespace, manifest)

    assert _get_status(custom_objects, namespace, "JitPolicy", metadata_name) == 200


def test_a_selector_only_policy_is_not_judged_by_names_it_cannot_know(
    custom_objects: k8s.CustomObjectsApi, namespace: str
) -> None:
    """VMs a selector picks are known only at reconcile, where the operator checks them."""
    manifest = _policy()
    manifest["metadata"]["name"] = "p" * 60
    del manifest["spec"]["virtualMachines"]
    manifest["spec"]["vmSelector"] = {"all": True, "ports": [_selector_port()]}

    _create(custom_objects, namespace, manifest)

    assert _get_status(custom_objects, namespace, "JitPolicy", "p" * 60) == 200


def test_adding_a_vm_too_long_for_the_policy_name_is_refused_and_changes_nothing(
    custom_objects: k8s.CustomObjectsApi, namespace: str
) -> None:
    stored = _create(custom_objects, namespace, _policy())
    changed = copy.deepcopy(stored)
    _add_vm(VM_47)(changed)

    with pytest.raises(k8s.ApiException) as refused:
        custom_objects.replace_namespaced_custom_object(
            GROUP, VERSION, namespace, "jitpolicies", "web-admins", changed
        )

    assert refused.value.status == 422, refused.value.body
    assert name_limit_violations("web-admins", [VM_47])[0] in _api_message(refused.value)
    current = cast(
        dict[str, Any],
        custom_objects.get_namespaced_custom_object(
            GROUP, VERSION, namespace, "jitpolicies", "web-admins"
        ),
    )
    assert current["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
