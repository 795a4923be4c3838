"""What ``kubectl jit status`` shows of extension chains and break-glass reviews."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def chain_lines(request: Mapping[str, Any]) -> list[str]:
    """Lines ``kubectl jit status`` adds for extensions and break-glass (none otherwise)."""
    spec = request.get("spec") or {}
    status = request.get("status") or {}
    lines = []
    if spec.get("extends"):
        start = status.get("chainStartTime")
        since = f" (chain since {start})" if start else ""
        lines.append(f"{'Extends:':<12}{spec['extends']}{since}")
    if status.get("extendedBy"):
        lines.append(f"{'Extension:':<12}{status['extendedBy']}")
    if spec.get("emergency") is True:
        reviews = status.get("reviews") or []
        done = ", ".join(f"{r.get('user')} at {r.get('time')}" for r in reviews)
        lines.append(f"{'Emergency:':<12}yes (break-glass); reviewed: {done or 'not yet'}")
    return lines
