"""Every Prometheus metric the operator exports, defined in one place.

Labels carry only bounded, operator-controlled values (namespace, policy and VM names that
a JitPolicy already declares, port numbers, outcomes, ARM operation ids, HTTP codes); never
free text such as a justification, and never requester or request names.
"""

from __future__ import annotations

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)

REGISTRY = CollectorRegistry(auto_describe=True)
# Process RSS/CPU and Python runtime series, as every Prometheus client exposes them.
for _collector in (PROCESS_COLLECTOR, GC_COLLECTOR, PLATFORM_COLLECTOR):
    REGISTRY.register(_collector)
PREFIX = "azure_jit"

OPEN_PORTS = Gauge(
    f"{PREFIX}_open_ports",
    "JIT ports held open by this operator's requests: 1 while last observed open on the VM's "
    "NSG(s), 0 once confirmed closed; absent when this replica does not know (standby).",
    ["namespace", "policy", "vm", "port"],
    registry=REGISTRY,
)
REQUESTS_TOTAL = Counter(
    f"{PREFIX}_requests_total",
    "JitAccessRequests that reached an outcome (Active, Expired, Revoked, Denied, Failed).",
    ["namespace", "policy", "outcome"],
    registry=REGISTRY,
)
REQUEST_OPEN_SECONDS = Histogram(
    f"{PREFIX}_request_open_seconds",
    "Seconds from a request's creation until its ports were confirmed open (Active).",
    buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
    registry=REGISTRY,
)
CLOSE_LAG_SECONDS = Histogram(
    f"{PREFIX}_close_lag_seconds",
    "Seconds from a request's expiresAt until its ports were confirmed closed.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120),
    registry=REGISTRY,
)
PORTS_OPEN_PAST_EXPIRY = Gauge(
    f"{PREFIX}_ports_open_past_expiry",
    "Ports whose JIT allow rule was still observed on an NSG later than expiresAt + close "
    "grace (as of the last read). Must stay 0.",
    registry=REGISTRY,
)
AZURE_API_REQUESTS_TOTAL = Counter(
    f"{PREFIX}_azure_api_requests_total",
    "Azure Resource Manager calls by operation and HTTP status code (each retry counts).",
    ["operation", "code"],
    registry=REGISTRY,
)
AZURE_API_DURATION_SECONDS = Histogram(
    f"{PREFIX}_azure_api_duration_seconds",
    "Duration of Azure Resource Manager calls by operation.",
    ["operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
DRIFT_CORRECTIONS_TOTAL = Counter(
    f"{PREFIX}_drift_corrections_total",
    "Azure JIT policies re-applied because they were changed or deleted outside the operator.",
    registry=REGISTRY,
)
OLDEST_PENDING_REQUEST = Gauge(
    f"{PREFIX}_oldest_pending_request_creation_timestamp_seconds",
    "Creation time (Unix seconds) of the oldest JitAccessRequest still Pending, by the reason "
    "it waits (its Ready condition reason: WaitingForPolicy, WaitingForApproval, "
    "WaitingForPort, Initiating, AzureUnavailable, ...); absent when none is.",
    ["namespace", "reason"],
    registry=REGISTRY,
)
POLICY_LAST_SYNC = Gauge(
    f"{PREFIX}_policy_last_sync_timestamp_seconds",
    "When (Unix seconds) a JitPolicy was last reconciled to Ready against Azure (confirmed in "
    "sync, or checked under reconcile-policy skip), on a change or a drift check; stale when "
    "the operator makes no progress on it.",
    ["namespace", "policy"],
    registry=REGISTRY,
)
RECONCILE_ERRORS_TOTAL = Counter(
    f"{PREFIX}_reconcile_errors_total",
    "Reconciliations that ended in an error (retried or permanent).",
    ["kind"],
    registry=REGISTRY,
)
PORTS_EXPOSED = Gauge(
    f"{PREFIX}_ports_exposed",
    "JIT-protected VM ports that a rule other than a JIT grant admits traffic to (1), through "
    "both the subnet's and the NIC's NSG, as of the last drift check; 0 when only JIT grants "
    "admit. See status.exposure of the JitPolicy for which rule admits which sources.",
    ["namespace", "policy", "vm", "port"],
    registry=REGISTRY,
)
PORTS_EXPOSED_TO_INTERNET = Gauge(
    f"{PREFIX}_ports_exposed_to_internet",
    "Like ports_exposed, but only when some admitted source lies outside the VM's virtual "
    "network (the Internet), or in a service tag whose addresses cannot be known.",
    ["namespace", "policy", "vm", "port"],
    registry=REGISTRY,
)
PORTS_UNPROTECTED = Gauge(
    f"{PREFIX}_ports_unprotected",
    "JIT-protected VM ports whose JIT deny rule is missing from every NSG guarding the VM (1), "
    "as of the last drift check: removed outside Azure JIT, e.g. by an IaC apply.",
    ["namespace", "policy", "vm", "port"],
    registry=REGISTRY,
)
DENY_RULES_RESTORED_TOTAL = Counter(
    f"{PREFIX}_deny_rules_restored_total",
    "Azure JIT policies re-applied because JIT's deny rule for a protected port was missing.",
    ["namespace", "policy"],
    registry=REGISTRY,
)
EMERGENCY_REQUESTS_TOTAL = Counter(
    f"{PREFIX}_emergency_requests_total",
    "Emergency (break-glass) JitAccessRequests that opened without approval.",
    ["namespace", "policy"],
    registry=REGISTRY,
)
EMERGENCY_REQUESTS_UNREVIEWED = Gauge(
    f"{PREFIX}_emergency_requests_unreviewed",
    "Emergency (break-glass) JitAccessRequests that opened and still await an approver's "
    "review (condition ReviewRequired=True), Active or finished.",
    ["namespace", "policy"],
    registry=REGISTRY,
)
REQUESTS_AWAITING_APPROVAL = Gauge(
    f"{PREFIX}_requests_awaiting_approval",
    "JitAccessRequests waiting for an approver (Pending, reason WaitingForApproval), by "
    "namespace and JitPolicy; absent when none is, and on a standby replica. Drives the "
    "AzureJitRequestAwaitingApproval alert that tells approvers.",
    ["namespace", "policy"],
    registry=REGISTRY,
)
APPROVAL_NOTIFICATIONS_TOTAL = Counter(
    f"{PREFIX}_approval_notifications_total",
    "Approver notifications (spec.approval.notify webhook posts) by outcome: sent; retried "
    "(5xx, 408, 429, timeout or no connection: tried again with back-off); rejected (another "
    "4xx: tried again too, the URL may be fixed); misconfigured (the Secret or its key is "
    "missing or unreadable, or holds no http(s) URL); gave_up (still failing when the request "
    "stopped waiting).",
    ["namespace", "policy", "outcome"],
    registry=REGISTRY,
)
