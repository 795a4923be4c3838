"""Microsoft.Network: NSGs, security rules, network interfaces, virtual networks, subnets.

NSG and security-rule writes are long-running operations (see :mod:`.lro`): the change is
visible at once with ``provisioningState`` ``Updating``/``Deleting`` and completes when the
operation does. Shapes are rendered by :mod:`.network_render`.
"""

from __future__ import annotations

from azure_arm_emulator import errors, ids
from azure_arm_emulator.arm import (
    NETWORK_API_VERSIONS,
    ArmRequest,
    ArmResponse,
    Route,
    page,
)
from azure_arm_emulator.lro import OperationTracker
from azure_arm_emulator.model import Nsg, SecurityRule, new_etag
from azure_arm_emulator.network_render import (
    render_nic,
    render_nsg,
    render_subnet,
    render_vnet,
)
from azure_arm_emulator.nsg_rules import (
    check_conflicts,
    render_default_rules,
    render_rule,
    validate_rule,
)
from azure_arm_emulator.settings import EmulatorSettings
from azure_arm_emulator.store import Store, in_scope

_RG = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
_NSGS = _RG + "/providers/Microsoft.Network/networkSecurityGroups"
_NSG = _NSGS + "/{networkSecurityGroupName}"
_NSG_ACTION = "Microsoft.Network/networkSecurityGroups"
_RULE_ACTION = "Microsoft.Network/networkSecurityGroups/securityRules"


class NetworkApi:
    def __init__(
        self, store: Store, settings: EmulatorSettings, operations: OperationTracker
    ) -> None:
        self.store = store
        self.settings = settings
        self.operations = operations

    # ----------------------------------------------------------------------- NSGs

    def get_nsg(self, request: ArmRequest) -> ArmResponse:
        p = request.params
        nsg = self.store.require_nsg(
            p["subscriptionId"], p["resourceGroupName"], p["networkSecurityGroupName"]
        )
        return ArmResponse(200, render_nsg(self.store, nsg))

    def list_nsgs(self, request: ArmRequest) -> ArmResponse:
        p = request.params
        rg = p.get("resourceGroupName")
        if rg is None:
            self.store.require_subscription(p["subscriptionId"])
        else:
            self.store.require_resource_group(p["subscriptionId"], rg)
        attachments = self.store.attachments()
        items = [
            render_nsg(self.store, nsg, attachments)
            for nsg in in_scope(self.store.nsgs.values(), p["subscriptionId"], rg)
        ]
        return ArmResponse(200, page(items, request, page_size=self.settings.page_size))

    def put_nsg(self, request: ArmRequest) -> ArmResponse:
        p = request.params
        group = self.store.require_resource_group(p["subscriptionId"], p["resourceGroupName"])
        body = request.json_object()
        name = p["networkSecurityGroupName"]
        key = ids.key(ids.nsg_id(group.subscription, group.name, name))
        existing = self.store.nsgs.get(key)
        location = body.get("location")
        if existing is None and not isinstance(location, str):
            raise errors.ArmError(
                400, "LocationRequired", "The location property is required for this definition."
            )
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise errors.invalid_request_content("'properties' must be a JSON object.")
        rules: dict[str, SecurityRule] = {}
        probe = Nsg(group.subscription, group.name, name, str(location or ""))
        for item in props.get("securityRules") or []:
            rule_name = str(item.get("name", "")) if isinstance(item, dict) else ""
            if not rule_name:
                raise errors.ArmError(
                    400, "InvalidRequestFormat", "Every security rule needs a name."
                )
            rule_props = validate_rule(rule_name, item)
            check_conflicts(probe, rule_name, rule_props)
            previous = existing.rules.get(rule_name.lower()) if existing else None
            rule = SecurityRule(
                rule_name,
                rule_props,
                provisioning_state="Updating",
                jit_policy=previous.jit_policy if previous else None,
            )
            rules[rule_name.lower()] = rule
            probe.rules[rule_name.lower()] = rule
        nsg = existing or Nsg(group.subscription, group.name, name, str(location))
        nsg.rules = rules
        if "tags" in body:
            nsg.tags = {str(k): str(v) for k, v in (body.get("tags") or {}).items()}
        nsg.flush_connection = bool(props.get("flushConnection", nsg.flush_connection))
        nsg.provisioning_state = "Updating"
        nsg.touch()
        self.store.nsgs[key] = nsg

        def complete() -> None:
            nsg.provisioning_state = "Succeeded"
            for rule in nsg.rules.values():
                if rule.provisioning_state == "Updating":
                    rule.provisioning_state = "Succeeded"

        operation = self.operations.start(
            subscription=nsg.subscription, location=nsg.location, on_complete=complete
        )
        headers = self.operations.headers(operation, request)
        headers.pop("Location")
        return ArmResponse(200 if existing else 201, render_nsg(self.store, nsg), headers)

    def patch_nsg_tags(self, request: ArmRequest) -> ArmResponse:
        p = request.params
        nsg = self.store.require_nsg(
            p["subscriptionId"], p["resourceGroupName"], p["networkSecurityGroupName"]
        )
        body = request.json_object()
        tags = body.get("tags")
        if not isinstance(tags, dict):
            raise errors.ArmError(400, "InvalidRequestFormat", "'tags' must be a JSON object.")
        nsg.tags = {str(k): str(v) for k, v in tags.items()}
        nsg.touch()
        return ArmResponse(200, render_nsg(self.store, nsg))

    def delete_nsg(self, request: ArmRequest) -> ArmResponse:
        p = request.params
        self.store.require_resource_group(p["subscriptionId"], p["resourceGroupName"])
        key = ids.key(
            ids.nsg_id(p["subscriptionId"], p["resourceGroupName"], p["networkSecurityGroupName"])
        )
        nsg = self.store.nsgs.get(key)
        if nsg is None:
            return ArmResponse(204)
        users = [n.id for n in self.store.nics_of_nsg(nsg)] + [
            s.id for s in self.store.subnets_of_nsg(nsg)
        ]
        if users:
            raise errors.ArmError(
                400,
                "InUseNetworkSecurityGroupCannotBeDeleted",
                f"Network security group {nsg.id} cannot be deleted because it is in use by "
                f"the following resources: {', '.join(users)}. In order to delete the Network "
                "security group, remove the association with the resource(s).",
            )
        nsg.provisioning_state = "Deleting"

        def complete() -> None:
            self.store.nsgs.pop(key, None)

        operation = self.operations.start(
            subscription=nsg.subscription, location=nsg.location, on_complete=complete
        )
        return ArmResponse(202, None, self.operations.headers(operation, request))

    # ----------------------------------------------------------------------- rules

    def _parent(self, request: ArmRequest) -> Nsg:
        p = request.params
        self.store.require_resource_group(p["subscriptionId"], p["resourceGroupName"])
        key = ids.key(
            ids.nsg_id(p["subscriptionId"], p["resourceGroupName"], p["networkSecurityGroupName"])
        )
        nsg = self.store.nsgs.get(key)
        if nsg is None:
            raise errors.ArmError(
                404,
                "ParentResourceNotFound",
                "Can not perform requested operation on nested resource. Parent resource "
                f"'{p['networkSecurityGroupName']}' not found.",
            )
        return nsg

    def get_rule(self, request: ArmRequest) -> ArmResponse:
        nsg = self._parent(request)
        rule = nsg.rules.get(request.params["securityRuleName"].lower())
        if rule is None:
            raise errors.nested_not_found(
                f"{nsg.id}/securityRules/{request.params['securityRuleName']}"
            )
        return ArmResponse(200, render_rule(nsg, rule))

    def list_rules(self, request: ArmRequest) -> ArmResponse:
        nsg = self._parent(request)
        items = [render_rule(nsg, rule) for rule in nsg.rules.values()]
        return ArmResponse(200, page(items, request, page_size=self.settings.page_size))

    def put_rule(self, request: ArmRequest) -> ArmResponse:
        nsg = self._parent(request)
        name = request.params["securityRuleName"]
        props = validate_rule(name, request.json_object())
        check_conflicts(nsg, name, props)
        existing = nsg.rules.get(name.lower())
        rule = SecurityRule(
            existing.name if existing else name,
            props,
            provisioning_state="Updating",
            jit_policy=existing.jit_policy if existing else None,
        )
        nsg.rules[name.lower()] = rule
        nsg.touch()

        def complete() -> None:
            if nsg.rules.get(name.lower()) is rule:
                rule.provisioning_state = "Succeeded"
                rule.etag = new_etag()

        operation = self.operations.start(
            subscription=nsg.subscription, location=nsg.location, on_complete=complete
        )
        headers = self.operations.headers(operation, request)
        headers.pop("Location")
        return ArmResponse(200 if existing else 201, render_rule(nsg, rule), headers)

    def delete_rule(self, request: ArmRequest) -> ArmResponse:
        nsg = self._parent(request)
        name = request.params["securityRuleName"]
        rule = nsg.rules.get(name.lower())
        if rule is None:
            return ArmResponse(204)
        rule.provisioning_state = "Deleting"

        def complete() -> None:
            if nsg.rules.get(name.lower()) is rule:
                del nsg.rules[name.lower()]
                nsg.touch()

        operation = self.operations.start(
            subscription=nsg.subscription, location=nsg.location, on_complete=complete
        )
        return ArmResponse(202, None, self.operations.headers(operation, request))

    def get_default_rule(self, request: ArmRequest) -> ArmResponse:
        nsg = self._parent(request)
        wanted = request.params["defaultSecurityRuleName"].lower()
        for rule in render_default_rules(nsg):
            if rule["name"].lower() == wanted:
                return ArmResponse(200, rule)
        raise errors.nested_not_found(
            f"{nsg.id}/defaultSecurityRules/{request.params['defaultSecurityRuleName']}"
        )

    def list_default_rules(self, request: ArmRequest) -> ArmResponse:
        nsg = self._parent(request)
        return ArmResponse(
            200, page(render_default_rules(nsg), request, page_size=self.settings.page_size)
        )

    # ----------------------------------------------------------------------- NIC, VNet, subnet

    def get_nic(self, request: ArmRequest) -> ArmResponse:
        p = request.params
        nic = self.store.require_nic(
            p["subscriptionId"], p["resourceGroupName"], p["networkInterfaceName"]
        )
        return ArmResponse(200, render_nic(self.store, nic))

    def get_vnet(self, request: ArmRequest) -> ArmResponse:
        p = request.params
        vnet = self.store.require_vnet(
            p["subscriptionId"], p["resourceGroupName"], p["virtualNetworkName"]
        )
        return ArmResponse(200, render_vnet(self.store, vnet))

    def get_subnet(self, request: ArmRequest) -> ArmResponse:
        p = request.params
        vnet = self.store.require_vnet(
            p["subscriptionId"], p["resourceGroupName"], p["virtualNetworkName"]
        )
        subnet = vnet.subnets.get(p["subnetName"].lower())
        if subnet is None:
            raise errors.nested_not_found(f"{vnet.id}/subnets/{p['subnetName']}")
        return ArmResponse(200, render_subnet(self.store, subnet))

    # ----------------------------------------------------------------------- routes

    def routes(self) -> list[Route]:
        v = NETWORK_API_VERSIONS
        rules = _NSG + "/securityRules"
        defaults = _NSG + "/defaultSecurityRules"
        vnet = _RG + "/providers/Microsoft.Network/virtualNetworks/{virtualNetworkName}"
        return [
            Route("GET", _NSG, "NetworkSecurityGroups_Get", v, f"{_NSG_ACTION}/read", self.get_nsg),
            Route(
                "PUT",
                _NSG,
                "NetworkSecurityGroups_CreateOrUpdate",
                v,
                f"{_NSG_ACTION}/write",
                self.put_nsg,
            ),
            Route(
                "PATCH",
                _NSG,
                "NetworkSecurityGroups_UpdateTags",
                v,
                f"{_NSG_ACTION}/write",
                self.patch_nsg_tags,
            ),
            Route(
                "DELETE",
                _NSG,
                "NetworkSecurityGroups_Delete",
                v,
                f"{_NSG_ACTION}/delete",
                self.delete_nsg,
            ),
            Route(
                "GET", _NSGS, "NetworkSecurityGroups_List", v, f"{_NSG_ACTION}/read", self.list_nsgs
            ),
            Route(
                "GET",
                "/subscriptions/{subscriptionId}/providers/Microsoft.Network/networkSecurityGroups",
                "NetworkSecurityGroups_ListAll",
                v,
                f"{_NSG_ACTION}/read",
                self.list_nsgs,
            ),
            Route(
                "GET",
                rules + "/{securityRuleName}",
                "SecurityRules_Get",
                v,
                f"{_RULE_ACTION}/read",
                self.get_rule,
            ),
            Route(
                "PUT",
                rules + "/{securityRuleName}",
                "SecurityRules_CreateOrUpdate",
                v,
                f"{_RULE_ACTION}/write",
                self.put_rule,
            ),
            Route(
                "DELETE",
                rules + "/{securityRuleName}",
                "SecurityRules_Delete",
                v,
                f"{_RULE_ACTION}/delete",
                self.delete_rule,
            ),
            Route("GET", rules, "SecurityRules_List", v, f"{_RULE_ACTION}/read", self.list_rules),
            Route(
                "GET",
                defaults + "/{defaultSecurityRuleName}",
                "DefaultSecurityRules_Get",
                v,
                f"{_NSG_ACTION}/defaultSecurityRules/read",
                self.get_default_rule,
            ),
            Route(
                "GET",
                defaults,
                "DefaultSecurityRules_List",
                v,
                f"{_NSG_ACTION}/defaultSecurityRules/read",
                self.list_default_rules,
            ),
            Route(
                "GET",
                _RG + "/providers/Microsoft.Network/networkInterfaces/{networkInterfaceName}",
                "NetworkInterfaces_Get",
                v,
                "Microsoft.Network/networkInterfaces/read",
                self.get_nic,
            ),
            Route(
                "GET",
                vnet,
                "VirtualNetworks_Get",
                v,
                "Microsoft.Network/virtualNetworks/read",
                self.get_vnet,
            ),
            Route(
                "GET",
                vnet + "/subnets/{subnetName}",
                "Subnets_Get",
                v,
                "Microsoft.Network/virtualNetworks/subnets/read",
                self.get_subnet,
            ),
        ]
