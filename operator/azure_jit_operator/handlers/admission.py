"""Admission webhooks (served by kopf, called by the API server):

- ``stamp-requester`` (mutating, CREATE): records the authenticated user as
  ``spec.requester``; ``verify-requester`` (validating, failurePolicy Fail) refuses any
  requester other than the user creating the request, so it cannot be forged.
- ``check-against-policy`` (validating, failurePolicy Ignore): refuses at apply time what the
  operator would Deny, with the same message. Ignore, because the operator checks again
  anyway: a webhook outage must not block requests that are fine.
- ``guard-approvals`` (validating on ``jitaccessrequests/status``, failurePolicy Fail):
  only the operator writes a request's status, except that an approver may add their own
  decision (``status.approvals``) or, on an emergency request, their own review
  (``status.reviews``), if a SubjectAccessReview grants them ``approve`` on the request's
  JitPolicy.
- The same three for JitAccessSchedule (``stamp-schedule-requester``,
  ``verify-schedule-requester``, ``guard-schedule-approvals``): a schedule is approved once,
  by the same verb and rules, and each decision names the generation (spec) it approves.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import kopf

from azure_jit_operator.domain.approvals import (
    ApprovalRecord,
    Requester,
    check_new_decisions,
    parse_records,
)
from azure_jit_operator.domain.break_glass import (
    ReviewRecord,
    check_emergency,
    check_new_reviews,
    parse_reviews,
)
from azure_jit_operator.domain.request_rules import check_request, policy_not_found
from azure_jit_operator.domain.schedules import parse_schedule_approvals
from azure_jit_operator.domain.specs import SpecError, parse_request_spec
from azure_jit_operator.kube.api import POLICIES, Gone, ObjectRef
from azure_jit_operator.reconcile.policy_views import policy_view
from azure_jit_operator.reconcile.runtime import Runtime

RESOURCE = ("azurejit.dev", "v1alpha1", "jitaccessrequests")
SCHEDULES = ("azurejit.dev", "v1alpha1", "jitaccessschedules")
log = logging.getLogger("azure_jit_operator.admission")
CLOCK_SKEW = timedelta(minutes=5)


def register(registry: kopf.OperatorRegistry) -> None:
    # persistent: kopf keeps these registered while the operator restarts, so requests and
    # decisions are refused (failurePolicy Fail) rather than accepted unchecked meanwhile.
    @kopf.on.mutate(
        *RESOURCE,
        operations=["CREATE"],
        registry=registry,
        id="stamp-requester",
        persistent=True,
    )
    def stamp_requester(
        *, spec: kopf.Spec, patch: kopf.Patch, userinfo: Mapping[str, Any], **_: Any
    ) -> None:
        if not spec.get("requester"):
            patch.spec["requester"] = _requester(userinfo).to_dict()

    @kopf.on.validate(
        *RESOURCE,
        operations=["CREATE"],
        registry=registry,
        id="verify-requester",
        persistent=True,
    )
    def verify_requester(*, spec: kopf.Spec, userinfo: Mapping[str, Any], **_: Any) -> None:
        stamped = Requester.from_dict(spec.get("requester"))
        if stamped is None or stamped.username != userinfo.get("username"):
            raise kopf.AdmissionError(
                "spec.requester is set by the cluster from the authenticated user; remove it "
                "from the manifest",
                code=403,
            )

    @kopf.on.validate(
        *RESOURCE,
        operations=["CREATE"],
        registry=registry,
        id="check-against-policy",
        ignore_failures=True,
    )
    async def check_against_policy(
        *, spec: kopf.Spec, namespace: str | None, memo: kopf.Memo, **_: Any
    ) -> None:
        rt: Runtime = memo.runtime
        try:
            request = parse_request_spec(spec)
        except SpecError as exc:
            raise kopf.AdmissionError(str(exc), code=422) from None
        # Read the policy from the API server, not from kopf's index: every replica serves
        # webhooks, and a standby (paused by peering) has no index filled.
        try:
            body = await rt.kube.get(ObjectRef(POLICIES, namespace or "", request.policy_name))
        except Gone:
            missing = policy_not_found(request.policy_name, namespace or "")
            raise kopf.AdmissionError(missing.message, code=422) from None
        except Exception as exc:  # failurePolicy Ignore in spirit: the operator judges again
            log.warning("check-against-policy could not read the JitPolicy; admitting: %s", exc)
            return
        policy = policy_view(body)
        if policy.spec is None:
            return  # the policy itself is invalid; the operator reports that on the request
        denial = check_request(request, policy.spec, policy_name=policy.name)
        if denial is None and request.emergency:
            denial = check_emergency(
                request.duration,
                policy.spec.break_glass,
                policy_name=policy.name,
                webhooks=rt.settings.webhooks,
            )
        if denial is not None:
            raise kopf.AdmissionError(denial.message, code=422)

    @kopf.on.validate(
        *RESOURCE,
        subresource="status",
        operations=["UPDATE"],
        registry=registry,
        id="guard-approvals",
        persistent=True,
    )
    async def guard_approvals(
        *,
        body: kopf.Body,
        userinfo: Mapping[str, Any],
        namespace: str | None,
        memo: kopf.Memo,
        **kwargs: Any,
    ) -> None:
        # kopf passes the object before this update as ``old``.
        await _guard_approvals(
            memo.runtime, body, kwargs.get("old"), userinfo, namespace=namespace or ""
        )


async def _guard_approvals(
    rt: Runtime,
    body: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    userinfo: Mapping[str, Any],
    *,
    namespace: str,
) -> None:
    old_status = dict((old or {}).get("status") or {})
    new_status = dict(body.get("status") or {})
    before = parse_records(old_status.get("approvals"))
    after = parse_records(new_status.get("approvals"))
    reviewed_before = parse_reviews(old_status.get("reviews"))
    reviewed_after = parse_reviews(new_status.get("reviews"))
    user = str(userinfo.get("username", ""))
    if user == rt.username:
        if before != after or reviewed_before != reviewed_after:
            raise kopf.AdmissionError(
                "the operator never changes recorded approvals or reviews", code=403
            )
        return
    if _without_approvals(old_status) != _without_approvals(new_status):
        raise kopf.AdmissionError(
            "only the operator writes a request's status; approvers add their decision to "
            "status.approvals (kubectl jit approve|deny), or their review of an emergency "
            "request to status.reviews (kubectl jit review)",
            code=403,
        )
    if before == after and reviewed_before == reviewed_after:
        return
    spec = body.get("spec") or {}
    requester = Requester.from_dict(spec.get("requester"))
    problem = check_new_decisions(before, after, user=user, requester=requester)
    if problem is None:
        problem = _stale_time(after[len(before) :], now=rt.clock.now())
    if problem is None:
        problem = check_new_reviews(
            reviewed_before,
            reviewed_after,
            user=user,
            requester=requester,
            emergency=spec.get("emergency") is True,
        )
    if problem is None:
        problem = _stale_time(reviewed_after[len(reviewed_before) :], now=rt.clock.now())
    if problem is not None:
        raise kopf.AdmissionError(problem, code=403)
    policy = str((body.get("spec") or {}).get("policyName", ""))
    try:
        allowed = await rt.authorizer.allowed(
            dict(userinfo),
            verb="approve",
            resource="jitpolicies",
            name=policy,
            namespace=namespace or "",
        )
    except Exception as exc:  # never pass an API error (with its headers) to a user
        log.warning("SubjectAccessReview for %s failed: %s", user, exc)
        raise kopf.AdmissionError(
            "cannot check right now whether you may approve (the operator could not ask "
            "the API server); try again shortly",
            code=503,
        ) from None
    if not allowed:
        act = "approve" if before != after else "review"
        raise kopf.AdmissionError(
            f"{user} may not {act} requests under JitPolicy {policy!r}: that takes the "
            f"'approve' verb on jitpolicies/{policy} in namespace {namespace} (RBAC)",
            code=403,
        )


def register_schedules(registry: kopf.OperatorRegistry) -> None:
    """The schedule's webhooks: who asked is stamped and cannot be forged; approvers add
    their own decision on the current generation, RBAC-checked like a request's."""

    @kopf.on.mutate(
        *SCHEDULES,
        operations=["CREATE"],
        registry=registry,
        id="stamp-schedule-requester",
        persistent=True,
    )
    def stamp_schedule_requester(
        *, spec: kopf.Spec, patch: kopf.Patch, userinfo: Mapping[str, Any], **_: Any
    ) -> None:
        if not spec.get("requester"):
            patch.spec["requester"] = _requester(userinfo).to_dict()

    @kopf.on.validate(
        *SCHEDULES,
        operations=["CREATE"],
        registry=registry,
        id="verify-schedule-requester",
        persistent=True,
    )
    def verify_schedule_requester(
        *, spec: kopf.Spec, userinfo: Mapping[str, Any], **_: Any
    ) -> None:
        stamped = Requester.from_dict(spec.get("requester"))
        if stamped is None or stamped.username != userinfo.get("username"):
            raise kopf.AdmissionError(
                "spec.requester is set by the cluster from the authenticated user; remove it "
                "from the manifest",
                code=403,
            )

    @kopf.on.validate(
        *SCHEDULES,
        subresource="status",
        operations=["UPDATE"],
        registry=registry,
        id="guard-schedule-approvals",
        persistent=True,
    )
    async def guard_schedule_approvals(
        *,
        body: kopf.Body,
        userinfo: Mapping[str, Any],
        namespace: str | None,
        memo: kopf.Memo,
        **kwargs: Any,
    ) -> None:
        await _guard_schedule_approvals(
            memo.runtime, body, kwargs.get("old"), userinfo, namespace=namespace or ""
        )


async def _guard_schedule_approvals(
    rt: Runtime,
    body: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    userinfo: Mapping[str, Any],
    *,
    namespace: str,
) -> None:
    old_status = dict((old or {}).get("status") or {})
    new_status = dict(body.get("status") or {})
    before = parse_schedule_approvals(old_status.get("approvals"))
    after = parse_schedule_approvals(new_status.get("approvals"))
    user = str(userinfo.get("username", ""))
    if user == rt.username:
        if before != after:
            raise kopf.AdmissionError("the operator never changes recorded approvals", code=403)
        return
    if _without_approvals(old_status) != _without_approvals(new_status):
        raise kopf.AdmissionError(
            "only the operator writes a schedule's status; approvers add their decision to "
            "status.approvals (kubectl jit approve schedule/NAME)",
            code=403,
        )
    if before == after:
        return
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    stale = next((a for a in after[len(before) :] if a.generation != generation), None)
    if stale is not None:
        raise kopf.AdmissionError(
            f"a decision must name the schedule's current generation {generation}, not "
            f"{stale.generation}: the spec changed since you read it; look at it again",
            code=409,
        )
    spec = body.get("spec") or {}
    requester = Requester.from_dict(spec.get("requester"))
    problem = check_new_decisions(
        [a.record for a in before if a.generation == generation],
        [a.record for a in after if a.generation == generation],
        user=user,
        requester=requester,
    )
    if problem is None and list(after[: len(before)]) != list(before):
        problem = "recorded approvals are permanent: existing entries cannot be changed or removed"
    if problem is None:
        problem = _stale_time([a.record for a in after[len(before) :]], now=rt.clock.now())
    if problem is not None:
        # The request rules' words, said of a schedule.
        problem = problem.replace("their own request", "their own schedule").replace(
            "on this request", "on this generation of the schedule"
        )
        raise kopf.AdmissionError(problem, code=403)
    policy = str((spec.get("requestTemplate") or {}).get("policyName", ""))
    await _authorize_approver(rt, userinfo, policy=policy, namespace=namespace, what="schedules")


async def _authorize_approver(
    rt: Runtime, userinfo: Mapping[str, Any], *, policy: str, namespace: str, what: str
) -> None:
    user = str(userinfo.get("username", ""))
    try:
        allowed = await rt.authorizer.allowed(
            dict(userinfo),
            verb="approve",
            resource="jitpolicies",
            name=policy,
            namespace=namespace,
        )
    except Exception as exc:  # never pass an API error (with its headers) to a user
        log.warning("SubjectAccessReview for %s failed: %s", user, exc)
        raise kopf.AdmissionError(
            "cannot check right now whether you may approve (the operator could not ask "
            "the API server); try again shortly",
            code=503,
        ) from None
    if not allowed:
        raise kopf.AdmissionError(
            f"{user} may not approve {what} under JitPolicy {policy!r}: that takes the "
            f"'approve' verb on jitpolicies/{policy} in namespace {namespace} (RBAC)",
            code=403,
        )


def _requester(userinfo: Mapping[str, Any]) -> Requester:
    return Requester(
        username=str(userinfo.get("username", "")),
        uid=str(userinfo.get("uid") or ""),
        groups=tuple(str(g) for g in userinfo.get("groups") or ()),
    )


def _without_approvals(status: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if k not in ("approvals", "reviews")}


def _stale_time(added: Sequence[ApprovalRecord | ReviewRecord], *, now: datetime) -> str | None:
    for entry in added:
        if entry.time is None or abs(entry.time - now) > CLOCK_SKEW:
            return "a decision's time must be now (within 5 minutes); kubectl jit sets it"
    return None
