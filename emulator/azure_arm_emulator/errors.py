"""ARM-shaped errors: the ``CloudError`` bodies and status codes the emulator answers with.

Every failure a client can provoke ends here: handlers raise :class:`ArmError` and the
server renders ``{"error": {"code", "message", "target"?, "details"?}}`` with the status.
The constructors below carry the codes and message wording Azure Resource Manager and the
resource providers use, so clients that branch on ``error.code`` behave as against Azure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ARM_NOT_FOUND_FIX = "For more details please go to https://aka.ms/ARMResourceNotFoundFix"


@dataclass
class ArmError(Exception):
    """An error response: HTTP status plus the CloudError body fields."""

    status: int
    code: str
    message: str
    target: str | None = None
    details: list[ArmError] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.code}: {self.message}")

    def body_fields(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target is not None:
            body["target"] = self.target
        if self.details:
            body["details"] = [detail.body_fields() for detail in self.details]
        return body

    def to_body(self) -> dict[str, Any]:
        return {"error": self.body_fields()}


# --------------------------------------------------------------------------- ARM front door


def authentication_missing() -> ArmError:
    return ArmError(
        401,
        "AuthenticationFailed",
        "Authentication failed. The 'Authorization' header is missing.",
        headers={
            "WWW-Authenticate": (
                'Bearer authorization_uri="https://login.microsoftonline.com/common", '
                'error="invalid_token", error_description="The authentication failed because '
                "of missing 'Authorization' header.\""
            )
        },
    )


def authentication_malformed() -> ArmError:
    return ArmError(
        401,
        "AuthenticationFailed",
        "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        headers={
            "WWW-Authenticate": (
                'Bearer authorization_uri="https://login.microsoftonline.com/common", '
                'error="invalid_token", error_description="The authentication failed because '
                "of invalid 'Authorization' header format.\""
            )
        },
    )


def invalid_token() -> ArmError:
    return ArmError(
        401,
        "InvalidAuthenticationToken",
        "The access token is invalid.",
        headers={
            "WWW-Authenticate": (
                'Bearer authorization_uri="https://login.microsoftonline.com/common", '
                'error="invalid_token", error_description="The access token is invalid."'
            )
        },
    )


def _challenge(description: str) -> dict[str, str]:
    return {
        "WWW-Authenticate": (
            'Bearer authorization_uri="https://login.microsoftonline.com/common", '
            f'error="invalid_token", error_description="{description}"'
        )
    }


def invalid_token_signature() -> ArmError:
    return ArmError(
        401,
        "InvalidAuthenticationToken",
        "The access token is invalid: its signature does not verify.",
        headers=_challenge("The access token is invalid."),
    )


def invalid_token_audience(audience: str) -> ArmError:
    allowed = ",".join(
        f"'{a}'"
        for a in (
            "https://management.core.windows.net/",
            "https://management.core.windows.net",
            "https://management.azure.com/",
            "https://management.azure.com",
        )
    )
    return ArmError(
        401,
        "InvalidAuthenticationTokenAudience",
        f"The access token has been obtained for wrong audience or resource '{audience}'. "
        f"It should exactly match with one of the allowed audiences {allowed}.",
        headers=_challenge("The access token has been obtained for wrong audience."),
    )


def expired_token(*, expired: datetime, now: datetime) -> ArmError:
    def arm_time(moment: datetime) -> str:  # ARM writes them as 6/23/2020 5:49:44 PM
        hour = moment.hour % 12 or 12
        half = "AM" if moment.hour < 12 else "PM"
        return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment:%M:%S} {half}"

    return ArmError(
        401,
        "ExpiredAuthenticationToken",
        f"The access token expiry UTC time '{arm_time(expired)}' is earlier than current UTC "
        f"time '{arm_time(now)}'.",
        headers=_challenge("The access token has expired."),
    )


def authorization_failed(
    *, object_id: str, action: str, scope: str, client_id: str | None = None
) -> ArmError:
    return ArmError(
        403,
        "AuthorizationFailed",
        f"The client '{client_id or object_id}' with object id '{object_id}' does not have "
        f"authorization to perform action '{action}' over scope '{scope}' or the scope is "
        "invalid. "
        "If access was recently granted, please refresh your credentials.",
    )


def missing_api_version() -> ArmError:
    return ArmError(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )


def invalid_api_version(api_version: str, supported: tuple[str, ...]) -> ArmError:
    return ArmError(
        400,
        "InvalidApiVersionParameter",
        f"The api-version '{api_version}' is invalid. "
        f"The supported versions are '{','.join(supported)}'.",
    )


def no_registered_provider(
    *, api_version: str, resource_type: str, location: str, supported: tuple[str, ...]
) -> ArmError:
    return ArmError(
        400,
        "NoRegisteredProviderFound",
        f"No registered resource provider found for location '{location}' and API version "
        f"'{api_version}' for type '{resource_type}'. The supported api-versions are "
        f"'{', '.join(supported)}'. The supported locations are '{location}'.",
    )


def invalid_resource_namespace(namespace: str) -> ArmError:
    return ArmError(
        400, "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid."
    )


def invalid_resource_type(resource_type: str, namespace: str, api_version: str) -> ArmError:
    return ArmError(
        400,
        "InvalidResourceType",
        f"The resource type '{resource_type}' could not be found in the namespace "
        f"'{namespace}' for api version '{api_version}'.",
    )


def invalid_request_uri(path: str) -> ArmError:
    return ArmError(404, "InvalidRequestUri", f"The request URI '{path}' is not valid.")


def method_not_allowed(method: str) -> ArmError:
    return ArmError(
        405,
        "MethodNotAllowed",
        f"The requested resource does not support http method '{method}'.",
    )


def invalid_request_content(reason: str) -> ArmError:
    return ArmError(
        400,
        "InvalidRequestContent",
        f"The request content was invalid and could not be deserialized: '{reason}'.",
    )


def invalid_subscription_id(subscription_id: str) -> ArmError:
    return ArmError(
        400,
        "InvalidSubscriptionId",
        f"The provided subscription identifier '{subscription_id}' is malformed or invalid.",
    )


def subscription_not_found(subscription_id: str) -> ArmError:
    return ArmError(
        404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found."
    )


def resource_group_not_found(resource_group: str) -> ArmError:
    return ArmError(
        404, "ResourceGroupNotFound", f"Resource group '{resource_group}' could not be found."
    )


def resource_not_found(resource_type: str, name: str, resource_group: str) -> ArmError:
    """ARM's 404 for a top-level resource that does not exist."""
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' "
        f"was not found. {ARM_NOT_FOUND_FIX}",
    )


def nested_not_found(resource_id: str) -> ArmError:
    """Microsoft.Network's 404 for a child resource (security rule, subnet, operation)."""
    return ArmError(404, "NotFound", f"Resource {resource_id} not found.")


def throttled(*, subscription_id: str, retry_after: int) -> ArmError:
    return ArmError(
        429,
        "SubscriptionRequestsThrottled",
        f"Number of requests for subscription '{subscription_id}' exceeded the limit. "
        f"Please try again after '{retry_after}' seconds.",
        headers={"Retry-After": str(retry_after)},
    )


def internal_server_error() -> ArmError:
    return ArmError(
        500,
        "InternalServerError",
        "Encountered internal server error. Diagnostic information: timestamp "
        "'emulator', subscription id '', tracking id '', request correlation id ''.",
    )


def service_unavailable(retry_after: int | None) -> ArmError:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return ArmError(
        503,
        "ServiceUnavailable",
        "The server is currently unable to handle the request. Please retry.",
        headers=headers,
    )
