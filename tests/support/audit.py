"""Audit records in tests: the published JSON Schema (docs/audit/), a validator for it, and a
log handler that collects what the operator writes on its audit logger."""

from __future__ import annotations

import json
import logging
import threading
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from azure_jit_operator.audit import LOGGER_NAME
from tests.support.repo import ROOT

SCHEMA_PATH = ROOT / "docs" / "audit" / "audit-record-v1.schema.json"


@cache
def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def schema_errors(record: Any) -> list[str]:
    """Every way ``record`` breaks the schema (empty: it is valid)."""
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator().iter_errors(record)
    ]


class AuditLog(logging.Handler):
    """Every line written on the operator's audit logger, parsed, while attached."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self._lock_records = threading.Lock()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_records:
            self.lines.append(record.getMessage())

    def records(self) -> list[dict[str, Any]]:
        with self._lock_records:
            return [json.loads(line) for line in self.lines]

    def about(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["object"]["name"] == name]

    def actions(self, name: str) -> list[str]:
        return [r["action"] for r in self.about(name)]

    def __enter__(self) -> AuditLog:
        logger = logging.getLogger(LOGGER_NAME)
        logger.addHandler(self)
        logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *_: object) -> None:
        logging.getLogger(LOGGER_NAME).removeHandler(self)
