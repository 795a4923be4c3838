"""Watching the operator's (and kopf's) log records from a test running it in-process."""

from __future__ import annotations

import logging


class LogWatch(logging.Handler):
    """Remembers every INFO-or-higher message on the root logger, kopf's INFO included,
    while attached (``with LogWatch() as log`` or ``attach()`` / ``detach()``)."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.messages: list[str] = []
        self._kopf_level = logging.NOTSET

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def seen(self, fragment: str) -> int:
        return sum(fragment in m for m in self.messages)

    def attach(self) -> LogWatch:
        kopf = logging.getLogger("kopf")
        self._kopf_level = kopf.level
        kopf.setLevel(logging.INFO)
        logging.getLogger().addHandler(self)
        return self

    def detach(self) -> None:
        logging.getLogger().removeHandler(self)
        logging.getLogger("kopf").setLevel(self._kopf_level)

    def __enter__(self) -> LogWatch:
        return self.attach()

    def __exit__(self, *_: object) -> None:
        self.detach()
