"""The audit log: every decision about a request as one JSON line on the logger
``azure_jit_operator.audit``, whatever format the operator's other logs use.

Records are built in ``domain/audit.py``; this module only writes them. The logger does not
propagate to the root (kopf's formatter would wrap the record in another shape); it has its
own handler writing the bare JSON record, one per line, to stderr beside the other logs, so
a log shipper routes it by ``schemaVersion`` (``azurejit.dev/audit/v1``).

For the decisions other parts make (extension, break-glass, review), build an
:class:`~azure_jit_operator.domain.audit.AuditRecord` and pass it to :func:`emit` right after
the status write that records the decision.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from typing import TextIO

from azure_jit_operator.domain.audit import AuditRecord

LOGGER_NAME = "azure_jit_operator.audit"
log = logging.getLogger(LOGGER_NAME)


class _AuditHandler(logging.StreamHandler[TextIO]):
    """Marks the handler this module installed, so configuring twice adds no second one."""


def configure_audit_log(stream: TextIO | None = None) -> None:
    """Send audit records, as bare JSON lines, to ``stream`` (stderr by default)."""
    for handler in list(log.handlers):
        if isinstance(handler, _AuditHandler):
            log.removeHandler(handler)
    handler = _AuditHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def emit(records: AuditRecord | Iterable[AuditRecord]) -> None:
    """Write each record as one JSON line (keys sorted, no newlines inside)."""
    for record in (records,) if isinstance(records, AuditRecord) else records:
        body = record.to_dict()
        log.info(
            json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
            extra={"audit": body},
        )
