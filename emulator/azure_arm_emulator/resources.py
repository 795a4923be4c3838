"""Microsoft.Resources, as far as the Azure CLI needs it: tenants, subscriptions and resource
groups, read-only, plus the unauthenticated cloud metadata (``/metadata/endpoints``) that
``az cloud register --endpoint-resource-manager`` reads.

A principal sees the subscriptions and resource groups it holds a role in (its scopes; any
scope inside a subscription makes the subscription visible), as ARM lists them. Subscriptions
belong to the tenant of the caller's Entra identity (world files give subscriptions no
tenant), else to the first identity's tenant, else the default world's.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from azure_arm_emulator import errors
from azure_arm_emulator.admin_calls import DEFAULT_TENANT_ID
from azure_arm_emulator.arm import ArmRequest, ArmResponse, Route
from azure_arm_emulator.model import ResourceGroup, Subscription
from azure_arm_emulator.store import Principal, Store

# azure-cli 2.91 sends 2022-12-01 (subscriptions) and 2024-11-01 (resource groups).
SUBSCRIPTION_API_VERSIONS = ("2016-06-01", "2020-01-01", "2021-01-01", "2022-12-01")
RESOURCE_API_VERSIONS = (
    "2021-04-01",
    "2022-09-01",
    "2023-07-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
)
# 2022-09-01 (what az cloud register asks) answers one cloud; 2019-05-01 a list of clouds.
METADATA_API_VERSIONS = ("2019-05-01", "2022-09-01")
_SUB = "/subscriptions/{subscriptionId}"
_GROUPS = _SUB + "/resourcegroups"


def _visible(principal: Principal, scope: str) -> bool:
    """Whether ``principal`` holds a role at, above or below ``scope``."""
    if principal.scopes is None:
        return True
    target = scope.rstrip("/").lower()
    for allowed in principal.scopes:
        held = allowed.rstrip("/").lower()
        if target == held or target.startswith(held + "/") or held.startswith(target + "/"):
            return True
    return False


class ResourcesApi:
    def __init__(self, store: Store) -> None:
        self.store = store

    def tenant_of(self, principal: Principal) -> str:
        identities = self.store.identities
        if principal.client_id is not None and principal.client_id.lower() in identities:
            return identities[principal.client_id.lower()].tenant_id
        return next((i.tenant_id for i in identities.values()), DEFAULT_TENANT_ID)

    def _render_subscription(self, sub: Subscription, tenant: str) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{sub.id}",
            "authorizationSource": "RoleBased",
            "managedByTenants": [],
            "subscriptionId": sub.id,
            "tenantId": tenant,
            "displayName": sub.display_name,
            "state": "Enabled",
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
        }

    @staticmethod
    def _render_group(group: ResourceGroup) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": group.id,
            "name": group.name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": group.location,
        }
        if group.tags:
            out["tags"] = dict(group.tags)
        out["properties"] = {"provisioningState": "Succeeded"}
        return out

    def list_tenants(self, request: ArmRequest) -> ArmResponse:
        tenant = self.tenant_of(request.principal)
        body = {
            "value": [
                {
                    "id": f"/tenants/{tenant}",
                    "tenantId": tenant,
                    "tenantCategory": "Home",
                    "displayName": "Emulated tenant",
                    "defaultDomain": "emulator.onmicrosoft.com",
                    "domains": ["emulator.onmicrosoft.com"],
                    "tenantType": "AAD",
                }
            ]
        }
        return ArmResponse(200, body)

    def list_subscriptions(self, request: ArmRequest) -> ArmResponse:
        tenant = self.tenant_of(request.principal)
        value = [
            self._render_subscription(sub, tenant)
            for sub in self.store.subscriptions.values()
            if _visible(request.principal, f"/subscriptions/{sub.id}")
        ]
        return ArmResponse(200, {"value": value, "count": {"type": "Total", "value": len(value)}})

    def get_subscription(self, request: ArmRequest) -> ArmResponse:
        sub = self.store.require_subscription(request.params["subscriptionId"])
        if not _visible(request.principal, f"/subscriptions/{sub.id}"):
            raise errors.subscription_not_found(sub.id)  # assumption: ARM's answer here
        return ArmResponse(200, self._render_subscription(sub, self.tenant_of(request.principal)))

    def list_groups(self, request: ArmRequest) -> ArmResponse:
        sub = self.store.require_subscription(request.params["subscriptionId"])
        value = [
            self._render_group(group)
            for group in self.store.resource_groups_of(sub.id)
            if _visible(request.principal, group.id)
        ]
        return ArmResponse(200, {"value": value})

    def get_group(self, request: ArmRequest) -> ArmResponse:
        p = request.params
        group = self.store.require_resource_group(p["subscriptionId"], p["resourceGroupName"])
        return ArmResponse(200, self._render_group(group))

    def routes(self) -> list[Route]:
        subs, groups = SUBSCRIPTION_API_VERSIONS, RESOURCE_API_VERSIONS
        read_sub = "Microsoft.Resources/subscriptions/read"
        read_group = "Microsoft.Resources/subscriptions/resourceGroups/read"
        return [
            # Lists filter by the caller's scopes themselves, so they are not scope-checked.
            Route(
                "GET",
                "/tenants",
                "Tenants_List",
                subs,
                "Microsoft.Resources/tenants/read",
                self.list_tenants,
                scoped=False,
            ),
            Route(
                "GET",
                "/subscriptions",
                "Subscriptions_List",
                subs,
                read_sub,
                self.list_subscriptions,
                scoped=False,
            ),
            Route(
                "GET",
                _SUB,
                "Subscriptions_Get",
                subs,
                read_sub,
                self.get_subscription,
                scoped=False,
            ),
            Route(
                "GET",
                _GROUPS,
                "ResourceGroups_List",
                groups,
                read_group,
                self.list_groups,
                scoped=False,
            ),
            Route(
                "GET",
                _GROUPS + "/{resourceGroupName}",
                "ResourceGroups_Get",
                groups,
                read_group,
                self.get_group,
            ),
        ]


def cloud_metadata(base_url: str) -> dict[str, Any]:
    """The emulator as a cloud: ARM and Entra ID both at ``base_url``."""
    return {
        "name": "Emulator",
        "portal": base_url,
        "resourceManager": base_url + "/",
        "authentication": {
            "loginEndpoint": base_url,
            "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "suffixes": {},
    }


async def serve_metadata(request: web.Request) -> web.StreamResponse:
    """``GET /metadata/endpoints`` (no authentication, as on ARM)."""
    version = request.query.get("api-version")
    if not version:
        return web.json_response(errors.missing_api_version().to_body(), status=400)
    if version not in METADATA_API_VERSIONS:
        error = errors.invalid_api_version(version, METADATA_API_VERSIONS)
        return web.json_response(error.to_body(), status=400)
    cloud = cloud_metadata(f"{request.scheme}://{request.host}")
    return web.json_response([cloud] if version == "2019-05-01" else cloud)
