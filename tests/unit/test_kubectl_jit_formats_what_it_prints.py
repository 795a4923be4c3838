"""What ``kubectl jit`` prints: the ``list`` table with approvals as n/N, the ``status``
description, the hint for connecting, and times as distances from now."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from azure_jit_operator.kubectl_jit.output import (
    ApprovalRule,
    EventLine,
    age,
    approval_rule,
    approvals_cell,
    connect_hint,
    describe,
    list_table,
    relative,
    table,
)

NOW = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)


def request(
    name: str = "ssh",
    *,
    namespace: str = "team-web",
    phase: str | None = "Pending",
    approvals: list[dict[str, str]] | None = None,
    spec_ports: tuple[int, ...] = (22,),
    **status: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": "2026-11-23T15:57:00Z",
        },
        "spec": {
            "policyName": "web-admins",
            "virtualMachine": "vm-web-01",
            "ports": [{"number": n, "sourceAddressPrefix": "198.51.100.7/32"} for n in spec_ports],
            "duration": "1h",
            "justification": "INC-4711 disk full",
            "requester": {"username": "alice", "groups": ["devs"]},
        },
        "status": dict(status),
    }
    if phase:
        body["status"]["phase"] = phase
    if approvals is not None:
        body["status"]["approvals"] = approvals
    return body


def decision(user: str, decision: str = "Approved", reason: str = "") -> dict[str, str]:
    entry = {"user": user, "decision": decision, "time": "2026-11-23T15:58:00Z"}
    if reason:
        entry["reason"] = reason
    return entry


MANUAL_2 = ApprovalRule(policy="web-admins", required=2)
AUTOMATIC = ApprovalRule(policy="web-admins", required=None)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=5), "5s"),
        (timedelta(seconds=119), "119s"),
        (timedelta(minutes=59, seconds=59), "59m"),
        (timedelta(hours=2), "2h"),
        (timedelta(hours=3, minutes=20), "3h20m"),
        (timedelta(days=3), "3d"),
        (timedelta(seconds=-4), "0s"),
    ],
)
def test_spans_are_as_compact_as_kubectl_prints_them(delta: timedelta, text: str) -> None:
    assert age(delta) == text


def test_times_read_as_distances_from_now() -> None:
    assert relative(NOW + timedelta(minutes=59), NOW) == "in 59m"
    assert relative(NOW - timedelta(minutes=3), NOW) == "3m ago"


def test_tables_pad_columns_three_spaces_apart_without_trailing_blanks() -> None:
    assert table(("A", "LONGER"), [["wide cell", "x"], ["b", ""]]) == (
        "A           LONGER\nwide cell   x\nb"
    )


@pytest.mark.parametrize(
    ("approvals", "rule", "cell"),
    [
        ([], MANUAL_2, "0/2"),
        ([decision("bob")], MANUAL_2, "1/2"),
        ([decision("bob"), decision("carol")], MANUAL_2, "2/2"),
        ([decision("alice"), decision("bob")], MANUAL_2, "1/2"),
        ([decision("bob"), decision("carol", "Denied", "freeze")], MANUAL_2, "denied"),
        ([], AUTOMATIC, "auto"),
        ([decision("bob")], None, "1"),
        ([], None, "-"),
    ],
    ids=[
        "nobody yet under a manual policy",
        "one of two",
        "two of two",
        "the requester's own entry does not count",
        "a denial shows as denied",
        "an automatic policy",
        "the policy unreadable: only the count",
        "the policy unreadable and no approvals",
    ],
)
def test_the_approvals_column_counts_as_the_operator_does(
    approvals: list[dict[str, str]], rule: ApprovalRule | None, cell: str
) -> None:
    assert approvals_cell(request(approvals=approvals), rule) == cell


def test_a_policy_gives_its_approval_rule() -> None:
    manual = {
        "metadata": {"name": "web-admins"},
        "spec": {"approval": {"mode": "Manual", "requiredApprovals": 2, "timeout": "1h"}},
    }
    assert approval_rule(manual) == ApprovalRule("web-admins", 2)
    assert approval_rule({"metadata": {"name": "db"}, "spec": {}}) == ApprovalRule("db", None)


def test_the_list_table_shows_one_row_per_request_sorted_by_name() -> None:
    active = request(
        "web-ssh",
        phase="Active",
        approvals=[decision("bob"), decision("carol")],
        expiresAt="2026-11-23T16:59:00Z",
        spec_ports=(22, 443),
    )
    waiting = request("db-ssh", phase=None, approvals=[])
    text = list_table(
        [active, waiting],
        rules={("team-web", "web-admins"): MANUAL_2},
        now=NOW,
        all_namespaces=False,
    )
    assert text.splitlines() == [
        "NAME      POLICY       VM          PORTS    PHASE     EXPIRES   REQUESTER   APPROVALS",
        "db-ssh    web-admins   vm-web-01   22       Pending   -         alice       0/2",
        "web-ssh   web-admins   vm-web-01   22,443   Active    in 59m    alice       2/2",
    ]


def test_all_namespaces_adds_the_namespace_column_and_unknown_policies_show_counts() -> None:
    text = list_table(
        [request(namespace="team-db", approvals=[decision("bob")])],
        rules=None,
        now=NOW,
        all_namespaces=True,
    )
    header, row = text.splitlines()
    assert header.split()[:2] == ["NAMESPACE", "NAME"]
    cells = ["team-db", "ssh", "web-admins", "vm-web-01", "22", "Pending", "-", "alice", "1"]
    assert row.split() == cells


def test_status_describes_phase_times_ports_approvals_conditions_and_events() -> None:
    body = request(
        phase="Active",
        approvals=[decision("bob", reason="on call"), decision("carol")],
        message="port(s) 22 from 198.51.100.7/32 open on vm-web-01 until 2026-11-23T16:59:00Z",
        startTime="2026-11-23T15:59:00Z",
        expiresAt="2026-11-23T16:59:00Z",
        ports=[{"number": 22, "sourceAddressPrefix": "198.51.100.7/32", "state": "Open"}],
        conditions=[
            {
                "type": "Ready",
                "status": "True",
                "reason": "Opened",
                "message": "open",
                "lastTransitionTime": "2026-11-23T15:59:00Z",
            }
        ],
    )
    events = [EventLine("Normal", "Opened", "open", 1, NOW - timedelta(minutes=1))]
    text = describe(body, rule=MANUAL_2, events=events, now=NOW)
    assert text.splitlines() == [
        "Name:       ssh",
        "Namespace:  team-web",
        "Policy:     web-admins",
        "VM:         vm-web-01",
        "Duration:   1h",
        "Reason:     INC-4711 disk full",
        "Requester:  alice",
        "Created:    2026-11-23T15:57:00Z (3m ago)",
        "Phase:      Active",
        "Message:    port(s) 22 from 198.51.100.7/32 open on vm-web-01 until 2026-11-23T16:59:00Z",
        "Started:    2026-11-23T15:59:00Z (60s ago)",
        "Expires:    2026-11-23T16:59:00Z (in 59m)",
        "Closed:     -",
        "Ports:",
        "  PORT   SOURCE            STATE",
        "  22     198.51.100.7/32   Open",
        "Approvals:  2 of 2 required",
        "  USER    DECISION   TIME                            REASON",
        "  bob     Approved   2026-11-23T15:58:00Z (2m ago)   on call",
        "  carol   Approved   2026-11-23T15:58:00Z (2m ago)   -",
        "Conditions:",
        "  TYPE    STATUS   REASON   SINCE     MESSAGE",
        "  Ready   True     Opened   60s ago   open",
        "Events:",
        "  LAST SEEN   TYPE     REASON   MESSAGE",
        "  60s ago     Normal   Opened   open",
    ]


def test_status_of_a_fresh_request_says_who_must_act_and_why_events_are_missing() -> None:
    text = describe(
        request(phase=None),
        rule=MANUAL_2,
        events=None,
        events_note="you may not list events in namespace team-web",
        now=NOW,
    )
    lines = text.splitlines()
    assert "Phase:      Pending" in lines
    assert "  22     198.51.100.7/32   -" in lines
    assert "Approvals:  0 of 2 required" in lines
    assert "  none yet: an approver runs `kubectl jit approve ssh`" in lines
    assert "Conditions:  -" in lines
    assert lines[-1] == "Events:     (not shown: you may not list events in namespace team-web)"


def test_status_under_an_automatic_or_unreadable_policy_says_so() -> None:
    automatic = describe(request(), rule=AUTOMATIC, events=[], now=NOW)
    assert "Approvals:  not required (JitPolicy web-admins approves automatically)" in automatic
    assert "Events:     -" in automatic
    unknown = describe(request(approvals=[decision("bob")]), rule=None, events=[], now=NOW)
    assert "Approvals:  1 approval(s) (cannot read JitPolicy web-admins)" in unknown


def test_a_denied_request_names_who_denied_and_why() -> None:
    body = request(phase="Denied", approvals=[decision("carol", "Denied", "change freeze")])
    text = describe(body, rule=MANUAL_2, events=[], now=NOW)
    assert "Approvals:  0 of 2 required; denied by carol" in text
    assert "  carol   Denied     2026-11-23T15:58:00Z (2m ago)   change freeze" in text


def test_the_connect_hint_names_the_vm_each_port_and_the_expiry() -> None:
    body = request(
        "ssh",
        phase="Active",
        expiresAt="2026-11-23T16:59:00Z",
        spec_ports=(22, 3389, 8443),
        ports=[
            {"number": 22, "sourceAddressPrefix": "198.51.100.7/32", "state": "Open"},
            {"number": 3389, "sourceAddressPrefix": "198.51.100.7/32", "state": "Open"},
            {"number": 8443, "sourceAddressPrefix": "198.51.100.7/32", "state": "Open"},
        ],
    )
    assert connect_hint(body, now=NOW).splitlines() == [
        "vm-web-01 is open for you until 2026-11-23T16:59:00Z (in 59m):",
        "  ssh <user>@vm-web-01   # port 22 open from 198.51.100.7/32",
        "  mstsc /v:vm-web-01     # port 3389 open from 198.51.100.7/32",
        "  vm-web-01:8443         # port 8443 open from 198.51.100.7/32",
        "(vm-web-01 is the Azure VM name: use its IP address or DNS name where it does not "
        "resolve)",
        "close it early: kubectl jit revoke ssh",
    ]
