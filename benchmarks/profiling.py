"""Sampling the operator process with py-spy (``uv sync --group bench`` installs it) while a
benchmark runs, and summarising the collapsed stacks it writes.

    python -m benchmarks --only open_latency --profile      # writes results/*.pyspy.txt
    python -m benchmarks.profiling results/open_latency-100.pyspy.txt [--top 40]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def sampled(pid: int, output: Path | None, *, rate: int = 200) -> Iterator[None]:
    """Record ``pid`` with py-spy (GIL-holding samples only) into ``output``; no-op if None."""
    binary = py_spy()
    if output is None or binary is None:
        if output is not None:
            print("py-spy not installed (uv sync --group bench); not profiling", flush=True)
        yield
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    recorder = subprocess.Popen(
        [
            *(binary, "record", "--pid", str(pid), "--rate", str(rate)),
            *("--format", "raw", "--gil", "--nonblocking", "-o", str(output)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()


def summarise(path: Path, *, top: int = 30) -> str:
    """Self and inclusive sample shares per function (file:function), highest first."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return f"{path}: no samples"
    lines = [f"{path.name}: {total} samples (GIL held)", "", "self %  function"]
    lines += [f"{100 * n / total:5.1f}  {f}" for f, n in own.most_common(top)]
    lines += ["", "incl %  function"]
    lines += [f"{100 * n / total:5.1f}  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/module.py:123)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "azure_jit_operator/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{file}:{name}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiling")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    for file in args.files:
        print(summarise(file, top=args.top))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
