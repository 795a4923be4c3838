"""Identities in world files, the token grant's decisions and access token checks, without a
server."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from azure_arm_emulator.access_tokens import (
    AUTH_ASSERTION,
    AUTH_SECRET,
    decode_unverified,
    encode_jwt,
    mint,
    verify,
)
from azure_arm_emulator.arm import authenticate, authorize
from azure_arm_emulator.core import Emulator
from azure_arm_emulator.entra import (
    ASSERTION_TYPE,
    EntraError,
    instance_discovery,
    openid_configuration,
    token_response,
)
from azure_arm_emulator.errors import ArmError
from azure_arm_emulator.identities import (
    FEDERATION_AUDIENCE,
    Identity,
    IdentityError,
    parse_identity,
)
from azure_arm_emulator.world import WorldError, load_world, parse_world, world_to_dict

TENANT = "cccccccc-cccc-cccc-cccc-cccccccccccc"
CLIENT = "a1a1a1a1-0000-4000-8000-000000000002"
SUB = "00000000-0000-0000-0000-000000000000"
BASE = "https://127.0.0.1:8443"
SUBJECT = "system:serviceaccount:team-web:jit-web"
NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def identities() -> dict[str, Identity]:
    return {i.key: i for i in load_world().identities}


def _grant(identities: dict[str, Identity], **form: str) -> dict[str, Any]:
    fields = {
        "grant_type": "client_credentials",
        "client_id": CLIENT,
        "scope": "https://management.azure.com/.default",
        **form,
    }
    return token_response(
        fields, tenant=TENANT, identities=identities, issuer_base=BASE, now=NOW, lifetime=3599
    )


def _service_account_token(**claims: Any) -> str:
    payload = {
        "iss": "https://oidc.example/cluster",
        "sub": SUBJECT,
        "aud": [FEDERATION_AUDIENCE],
        "iat": int(NOW),
        "exp": int(NOW) + 3600,
        **claims,
    }
    return encode_jwt({"alg": "RS256"}, payload, key=None)


# --------------------------------------------------------------------------- identities


def test_default_world_has_a_full_access_and_a_narrow_identity(
    identities: dict[str, Identity],
) -> None:
    scopes = sorted(i.scopes for i in identities.values())

    assert scopes == [
        (f"/subscriptions/{SUB}", "/subscriptions/11111111-1111-1111-1111-111111111111"),
        (f"/subscriptions/{SUB}/resourceGroups/rg-web",),
    ]


def test_identities_survive_a_world_file_round_trip() -> None:
    world = load_world()

    reloaded = parse_world(yaml.safe_load(yaml.safe_dump(world_to_dict(world))))

    assert reloaded.identities == world.identities


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        pytest.param(
            {"clientId": "web-app", "tenantId": TENANT},
            "'clientId' must be a GUID",
            id="client ids are GUIDs",
        ),
        pytest.param(
            {"clientId": CLIENT, "tenantId": TENANT, "scopes": ["subscriptions/x"]},
            "must be an ARM scope",
            id="scopes are ARM paths",
        ),
        pytest.param(
            {"clientId": CLIENT, "tenantId": TENANT, "federatedSubject": "x"},
            "unknown fields ['federatedSubject']",
            id="misspelt fields are named",
        ),
        pytest.param({"clientId": CLIENT}, "'tenantId' must be", id="a tenant is required"),
    ],
)
def test_unusable_identity_is_refused_naming_the_field(
    entry: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(IdentityError, match="identity") as caught:
        parse_identity(entry)

    assert complaint in str(caught.value)


def test_world_with_one_client_id_twice_is_refused() -> None:
    data = world_to_dict(load_world())
    data["identities"].append(dict(data["identities"][0]))

    with pytest.raises(WorldError, match="each clientId may appear only once"):
        parse_world(data)


def test_identity_without_object_id_gets_a_stable_one() -> None:
    first = parse_identity({"clientId": CLIENT, "tenantId": TENANT})
    second = parse_identity({"clientId": CLIENT, "tenantId": TENANT})

    assert first.object_id == second.object_id != CLIENT
    assert first.scopes == ()


# --------------------------------------------------------------------------- the grant


def test_secret_grant_answers_like_entra(identities: dict[str, Identity]) -> None:
    answer = _grant(identities, client_secret="emulator-web-team-secret")

    assert set(answer) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert answer["token_type"] == "Bearer"
    claims = verify(answer["access_token"], now=NOW + 60)
    assert claims is not None
    assert (claims["appid"], claims["tid"], claims["appidacr"]) == (CLIENT, TENANT, AUTH_SECRET)


def test_federated_grant_marks_the_token_as_assertion_login(
    identities: dict[str, Identity],
) -> None:
    answer = _grant(
        identities,
        client_assertion_type=ASSERTION_TYPE,
        client_assertion=_service_account_token(),
    )

    _, claims = decode_unverified(answer["access_token"])
    assert claims["appidacr"] == AUTH_ASSERTION


@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        pytest.param({"client_secret": "nope"}, 401, "invalid_client", 7000215, id="wrong secret"),
        pytest.param({}, 401, "invalid_client", 7000218, id="no credential at all"),
        pytest.param(
            {"client_secret": "x", "grant_type": "password"},
            400,
            "unsupported_grant_type",
            70003,
            id="only client credentials are served",
        ),
        pytest.param(
            {"client_secret": "x", "scope": "https://management.azure.com/user_impersonation"},
            400,
            "invalid_scope",
            1002012,
            id="client credentials need a .default scope",
        ),
        pytest.param(
            {"client_secret": "x", "scope": "https://graph.microsoft.com/.default"},
            400,
            "invalid_resource",
            500011,
            id="only ARM tokens are issued",
        ),
        pytest.param(
            {"client_assertion_type": ASSERTION_TYPE, "client_assertion": "not-a-jwt"},
            400,
            "invalid_request",
            50027,
            id="a malformed assertion",
        ),
        pytest.param(
            {
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": _service_account_token(sub="system:serviceaccount:a:b"),
            },
            401,
            "invalid_client",
            70021,
            id="a subject that is not federated",
        ),
        pytest.param(
            {
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": _service_account_token(aud="https://kubernetes.default.svc"),
            },
            401,
            "invalid_client",
            700212,
            id="an assertion for another audience",
        ),
        pytest.param(
            {
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": _service_account_token(exp=int(NOW) - 1),
            },
            401,
            "invalid_client",
            700024,
            id="an expired assertion",
        ),
    ],
)
def test_refused_grant_carries_entra_status_error_and_code(
    identities: dict[str, Identity], form: dict[str, str], status: int, error: str, code: int
) -> None:
    with pytest.raises(EntraError) as caught:
        _grant(identities, **form)

    assert (caught.value.status, caught.value.error, caught.value.code) == (status, error, code)


def test_error_body_has_entra_fields() -> None:
    error = EntraError(401, "invalid_client", 7000215, "Invalid client secret provided.")

    body = error.to_body(
        trace_id="t", correlation_id="c", moment=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    )

    assert body == {
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t\r\n"
        "Correlation ID: c\r\nTimestamp: 2030-01-02 03:04:05Z",
        "error_codes": [7000215],
        "timestamp": "2030-01-02 03:04:05Z",
        "trace_id": "t",
        "correlation_id": "c",
        "error_uri": "https://login.microsoftonline.com/error?code=7000215",
    }


def test_classic_arm_scope_gives_the_classic_audience(identities: dict[str, Identity]) -> None:
    answer = _grant(
        identities,
        client_secret="emulator-web-team-secret",
        scope="https://management.core.windows.net//.default",
    )

    _, claims = decode_unverified(answer["access_token"])
    assert claims["aud"] == "https://management.core.windows.net/"


def test_federated_issuer_is_checked_when_the_identity_names_one() -> None:
    identity = parse_identity(
        {
            "clientId": CLIENT,
            "tenantId": TENANT,
            "federatedSubjects": [SUBJECT],
            "federatedIssuer": "https://oidc.example/other-cluster",
        }
    )

    with pytest.raises(EntraError) as caught:
        _grant(
            {identity.key: identity},
            client_assertion_type=ASSERTION_TYPE,
            client_assertion=_service_account_token(),
        )

    assert caught.value.code == 700211


def test_discovery_documents_point_at_the_emulator() -> None:
    discovery = instance_discovery(BASE, f"https://127.0.0.1/{TENANT}/oauth2/v2.0/authorize")
    config = openid_configuration(BASE, TENANT)

    assert discovery["tenant_discovery_endpoint"] == (
        f"{BASE}/{TENANT}/v2.0/.well-known/openid-configuration"
    )
    assert config["token_endpoint"] == f"{BASE}/{TENANT}/oauth2/v2.0/token"
    assert config["issuer"] == f"{BASE}/{TENANT}/v2.0"


# --------------------------------------------------------------------------- ARM side


def _token(identity: Identity, *, now: float = NOW) -> str:
    return mint(
        identity,
        resource="https://management.azure.com",
        issuer_base=BASE,
        now=now,
        lifetime=3599,
        auth_method=AUTH_SECRET,
    )


def test_opaque_bearer_strings_are_not_emulator_tokens() -> None:
    assert verify("emulator-token", now=NOW) is None
    assert verify(encode_jwt({"alg": "RS256"}, {"sub": "x"}, key=None), now=NOW) is None


@pytest.mark.parametrize(
    ("now", "code"),
    [
        pytest.param(NOW + 3599, "ExpiredAuthenticationToken", id="at exp the token has expired"),
        pytest.param(NOW + 86400, "ExpiredAuthenticationToken", id="a day later too"),
    ],
)
def test_emulator_tokens_expire_on_the_wall_clock_given(
    identities: dict[str, Identity], now: float, code: str
) -> None:
    with pytest.raises(ArmError) as caught:
        verify(_token(identities[CLIENT]), now=now)

    assert (caught.value.status, caught.value.code) == (401, code)


def test_token_with_a_changed_payload_fails_its_signature(identities: dict[str, Identity]) -> None:
    header, _, signature = _token(identities[CLIENT]).split(".")
    other = _token(identities[CLIENT.replace("2", "1", 1)]).split(".")[1]

    with pytest.raises(ArmError) as caught:
        verify(f"{header}.{other}.{signature}", now=NOW)

    assert caught.value.code == "InvalidAuthenticationToken"


def test_emulator_token_principal_carries_the_identity_scopes_when_tokens_are_strict(
    identities: dict[str, Identity],
) -> None:
    principal = authenticate(
        f"Bearer {_token(identities[CLIENT])}",
        tokens={},
        accept_any=False,
        identities=identities,
        now=NOW,
    )

    assert principal.client_id == CLIENT
    assert principal.scopes == (f"/subscriptions/{SUB}/resourceGroups/rg-web",)


def test_token_of_a_removed_identity_authenticates_without_any_scope(
    identities: dict[str, Identity],
) -> None:
    emulator = Emulator(load_world())
    route, _ = emulator.router.resolve(
        "GET",
        f"/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.Network/networkSecurityGroups/n",
    )
    principal = authenticate(
        f"Bearer {_token(identities[CLIENT])}", tokens={}, accept_any=True, identities={}, now=NOW
    )

    with pytest.raises(ArmError) as caught:
        authorize(principal, route, f"/subscriptions/{SUB}/resourceGroups/rg-web")

    assert caught.value.status == 403
    assert f"The client '{CLIENT}' with object id '{principal.object_id}'" in caught.value.message


def test_wall_clock_is_the_default_for_token_checks(identities: dict[str, Identity]) -> None:
    fresh = _token(identities[CLIENT], now=time.time())

    principal = authenticate(f"Bearer {fresh}", tokens={}, accept_any=False, identities=identities)

    assert principal.client_id == CLIENT
