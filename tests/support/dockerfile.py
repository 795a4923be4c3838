"""A small Dockerfile reader for tests: instructions with their arguments, split into stages.

Not a full BuildKit parser: enough to check the project's own Dockerfile (line continuations,
comments, parser directives, exec and shell forms, ``ARG`` defaults before the first ``FROM``).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_VARIABLE = re.compile(r"\$\{(\w+)(?::-[^}]*)?\}|\$(\w+)")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    arguments: str  # the rest of the (joined) line
    line: int  # 1-based line where the instruction starts

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form ENTRYPOINT/CMD/RUN, else None."""
        text = self.arguments.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        return [str(v) for v in value] if isinstance(value, list) else None

    def flags(self) -> dict[str, str]:
        """``--from=build`` style flags of COPY/ADD/FROM."""
        return dict(
            flag.removeprefix("--").partition("=")[::2]
            for flag in shlex.split(self.arguments)
            if flag.startswith("--")
        )

    def words(self) -> list[str]:
        return [w for w in shlex.split(self.arguments, comments=False) if not w.startswith("--")]


@dataclass
class Stage:
    image: str  # as written, variables expanded from global ARG defaults
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]
    instructions: list[Instruction]
    comments: list[str]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)


def parse_dockerfile(path: Path) -> Dockerfile:
    instructions: list[Instruction] = []
    comments: list[str] = []
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#"):
            comments.append(stripped.lstrip("#").strip())
            continue  # comments may sit between continuation lines, too
        if not stripped and not pending:
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        pending += stripped
        keyword, _, arguments = pending.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip(), start))
        pending = ""
    if pending:
        raise ValueError(f"{path}: the last instruction ends with a line continuation")

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "ARG" and not stages:
            name, _, default = instruction.arguments.partition("=")
            global_args[name.strip()] = default.strip().strip('"')
        elif instruction.keyword == "FROM":
            words = instruction.words()
            image = _VARIABLE.sub(lambda m: global_args.get(m[1] or m[2], m[0]), words[0])
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image=image, name=alias))
        elif stages:
            stages[-1].instructions.append(instruction)
    return Dockerfile(
        global_args=global_args, stages=stages, instructions=instructions, comments=comments
    )
