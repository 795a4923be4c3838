"""``kubectl jit schedule create|list|suspend|resume`` and the decisions on a schedule
(``kubectl jit approve|deny schedule/NAME``): what each does against the cluster.

A decision on a schedule names the generation (spec) it was made on: the operator counts it
only while the schedule's spec is unchanged, and the admission webhook refuses one made on a
generation that is no longer current (the spec changed since it was read).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from azure_jit_operator.domain.approvals import APPROVED
from azure_jit_operator.domain.durations import format_kube_duration
from azure_jit_operator.domain.schedules import parse_schedule_spec
from azure_jit_operator.domain.specs import SpecError
from azure_jit_operator.kubectl_jit.client import GROUP, VERSION, CliError, Cluster
from azure_jit_operator.kubectl_jit.decisions import ATTEMPTS, append_operations, decision_entry
from azure_jit_operator.kubectl_jit.output import NONE, table, when
from azure_jit_operator.kubectl_jit.schedule_arguments import (
    ScheduleCreateOptions,
    ScheduleListOptions,
    ScheduleOptions,
    ScheduleSuspendOptions,
)

SCHEDULES = "jitaccessschedules"
LIST_HEADERS = ("NAME", "SCHEDULE", "TIMEZONE", "DURATION", "SUSPEND", "READY", "NEXT", "ACTIVE")


# ----------------------------------------------------------------------------- commands


def schedule_manifest(options: ScheduleCreateOptions) -> dict[str, Any]:
    """The JitAccessSchedule to create (``spec.requester`` is stamped by the cluster)."""
    spec: dict[str, Any] = {
        "schedule": options.cron,
        "timeZone": options.time_zone,
        "duration": format_kube_duration(options.duration),
        "requestTemplate": {
            "policyName": options.policy,
            "virtualMachine": options.vm,
            "ports": [{"number": n, "sourceAddressPrefix": options.source} for n in options.ports],
            "justification": options.reason,
        },
    }
    if options.starting_deadline is not None:
        spec["startingDeadlineSeconds"] = int(options.starting_deadline.total_seconds())
    if options.suspend:
        spec["suspend"] = True
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JitAccessSchedule",
        "metadata": {"name": options.name},
        "spec": spec,
    }


def run_schedule(
    cluster: Cluster, options: ScheduleOptions, *, say: Callable[[str], None], now: datetime
) -> int:
    if isinstance(options, ScheduleCreateOptions):
        return _create(cluster, options, say=say)
    if isinstance(options, ScheduleListOptions):
        return _list(cluster, options, say=say, now=now)
    return _suspend(cluster, options, say=say)


def _create(cluster: Cluster, options: ScheduleCreateOptions, *, say: Callable[[str], None]) -> int:
    body = schedule_manifest(options)
    try:
        parse_schedule_spec(body["spec"])  # the operator's own checks, before the round trip
    except SpecError as exc:
        raise CliError(f"{exc.field.replace('spec.', '', 1)}: {exc.message}", code=2) from None
    try:
        cluster.create_object(SCHEDULES, body)
    except CliError as exc:
        if exc.status == 409:
            raise CliError(f"{exc.message}\npick another NAME") from None
        raise
    say(f"jitaccessschedule/{options.name} created in namespace {cluster.namespace}")
    say(
        f"see its windows: kubectl jit schedule list -n {cluster.namespace}; if its JitPolicy "
        f"requires approval, an approver runs `kubectl jit approve schedule/{options.name}`"
    )
    return 0


def _list(
    cluster: Cluster,
    options: ScheduleListOptions,
    *,
    say: Callable[[str], None],
    now: datetime,
) -> int:
    found = cluster.list_objects(SCHEDULES, all_namespaces=options.all_namespaces)
    if not found:
        where = "any namespace" if options.all_namespaces else f"namespace {cluster.namespace}"
        say(
            f"No JitAccessSchedules found in {where}. "
            "Create one: kubectl jit schedule create --help"
        )
        return 0
    say(list_schedules(found, now=now, all_namespaces=options.all_namespaces))
    return 0


def list_schedules(schedules: list[dict[str, Any]], *, now: datetime, all_namespaces: bool) -> str:
    headers = (("NAMESPACE",) if all_namespaces else ()) + LIST_HEADERS
    rows = []
    for item in schedules:
        meta, spec = item.get("metadata") or {}, item.get("spec") or {}
        status = item.get("status") or {}
        ready: Mapping[str, Any] = next(
            (c for c in status.get("conditions") or () if c.get("type") == "Ready"), {}
        )
        readiness = str(ready.get("status") or NONE)
        if ready.get("status") == "False":
            readiness = f"False ({ready.get('reason', '')})"
        row = [
            str(meta.get("name", "")),
            str(spec.get("schedule", "")),
            str(spec.get("timeZone") or "UTC"),
            str(spec.get("duration", "")),
            "yes" if spec.get("suspend") else "no",
            readiness,
            when(status.get("nextScheduleTime"), now),
            ",".join(status.get("active") or ()) or NONE,
        ]
        rows.append(([str(meta.get("namespace", ""))] if all_namespaces else []) + row)
    return table(headers, rows)


def _suspend(
    cluster: Cluster, options: ScheduleSuspendOptions, *, say: Callable[[str], None]
) -> int:
    if cluster.get_object(SCHEDULES, options.name) is None:
        raise CliError(
            f"jitaccessschedule/{options.name} not found in namespace {cluster.namespace} "
            "(`kubectl jit schedule list` shows what there is)"
        )
    cluster.merge_patch(SCHEDULES, options.name, {"spec": {"suspend": options.suspend}})
    if options.suspend:
        say(f"jitaccessschedule/{options.name} suspended: no window opens until it is resumed")
    else:
        say(f"jitaccessschedule/{options.name} resumed: windows open from the next start on")
    return 0


def record_schedule_decision(
    cluster: Cluster, name: str, *, decision: str, reason: str, now: Callable[[], datetime]
) -> tuple[str, int]:
    """Append the caller's decision on the schedule's current generation; returns the user
    it was recorded for and that generation."""
    user = cluster.username()
    for _attempt in range(ATTEMPTS):
        found = cluster.get_object(SCHEDULES, name, status=True)
        if found is None:
            raise CliError(
                f"jitaccessschedule/{name} not found in namespace {cluster.namespace} "
                "(`kubectl jit schedule list` shows what there is)"
            )
        generation = int((found.get("metadata") or {}).get("generation") or 1)
        entry = decision_entry(user=user, decision=decision, reason=reason, now=now())
        entry["generation"] = generation
        try:
            cluster.patch_object_status(SCHEDULES, name, append_operations(found, entry))
        except CliError as exc:
            if exc.status not in (409, 422):
                raise
            current = cluster.get_object(SCHEDULES, name, status=True)
            moved = (current or {}).get("metadata", {}).get("resourceVersion")
            if moved == (found.get("metadata") or {}).get("resourceVersion"):
                raise
            continue  # someone else wrote first, or the spec changed: read again
        return user, generation
    verb = "approval" if decision == APPROVED else "denial"
    raise CliError(
        f"could not record your {verb}: jitaccessschedule/{name} kept changing "
        f"({ATTEMPTS} attempts); try again"
    )
