"""Entry point of ``kubectl jit``: parse, connect, run one command, map failures to exit
codes (0 done, 1 refused / denied / failed / timed out, 2 usage error)."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence

from azure_jit_operator.kubectl_jit.arguments import (
    USAGE_ERROR,
    DecisionOptions,
    Invocation,
    ListOptions,
    RequestOptions,
    RevokeOptions,
    StatusOptions,
    parse_args,
)
from azure_jit_operator.kubectl_jit.chain_arguments import ExtendOptions, ReviewOptions
from azure_jit_operator.kubectl_jit.chain_commands import run_extend, run_review
from azure_jit_operator.kubectl_jit.client import CliError, Cluster, connect
from azure_jit_operator.kubectl_jit.commands import (
    Console,
    run_decision,
    run_list,
    run_request,
    run_revoke,
    run_status,
    wait_until_settled,
)
from azure_jit_operator.kubectl_jit.myip import DetectionError, detect_public_ip
from azure_jit_operator.kubectl_jit.schedule_arguments import (
    ScheduleCreateOptions,
    ScheduleListOptions,
    ScheduleSuspendOptions,
)
from azure_jit_operator.kubectl_jit.schedules import run_schedule

INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    invocation = parse_args(argv)  # usage errors exit with 2 here
    io = Console(out=sys.stdout, err=sys.stderr)
    try:
        return run(invocation, io=io, env=os.environ)
    except CliError as exc:
        prefix = "" if exc.message.startswith("Error from server") else "error: "
        print(prefix + exc.message, file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return INTERRUPTED


def run(invocation: Invocation, *, io: Console, env: Mapping[str, str]) -> int:
    options = invocation.options
    source = ""
    if isinstance(options, RequestOptions):
        try:
            source = options.source or detect_public_ip(env)
        except DetectionError as exc:
            raise CliError(str(exc), code=USAGE_ERROR) from None
        options = dataclasses.replace(options, source=source)
    with connect(invocation.connection, env) as cluster:
        return _dispatch(cluster, options, source=source, io=io)


def _dispatch(  # noqa: PLR0911 - one command each
    cluster: Cluster,
    options: RequestOptions
    | DecisionOptions
    | RevokeOptions
    | ListOptions
    | StatusOptions
    | ExtendOptions
    | ReviewOptions
    | ScheduleCreateOptions
    | ScheduleListOptions
    | ScheduleSuspendOptions,
    *,
    source: str,
    io: Console,
) -> int:
    if isinstance(options, RequestOptions):
        return run_request(cluster, options, source=source, io=io)
    if isinstance(options, DecisionOptions):
        return run_decision(cluster, options, io=io)
    if isinstance(options, RevokeOptions):
        return run_revoke(cluster, options, io=io)
    if isinstance(options, ListOptions):
        return run_list(cluster, options, io=io)
    if isinstance(options, ExtendOptions):
        return run_extend(
            cluster,
            options,
            say=io.say,
            wait=lambda name, timeout: wait_until_settled(cluster, name, timeout=timeout, io=io),
        )
    if isinstance(options, ReviewOptions):
        return run_review(cluster, options, now=io.now, say=io.say)
    if isinstance(options, ScheduleCreateOptions | ScheduleListOptions | ScheduleSuspendOptions):
        return run_schedule(cluster, options, say=io.say, now=io.now())
    return run_status(cluster, options, io=io)
