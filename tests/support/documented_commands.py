"""The command lines our documents show to a user, read out of them.

A README, a page under `docs/`, the scripts under `security/` and the docstrings under `bench/`
all tell someone what to type. `tests/test_documented_commands.py` checks each line still means
something to the program it names, so a changed option fails the suite instead of a user's first
try. This module only finds the lines and splits them into words; it decides nothing about them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What starts a command line, in the forms the documents write it: a `.venv/bin/` prefix (a release's absolute
# path before it too) or none, and as a systemd unit's `ExecStart=`.
_PROGRAMS = ("flask", "make", "python", "granian", "pybabel", "bash")
_PREFIX = re.compile(r"^(?:ExecStart=)?(?:(?:/\S+/)?\.venv/bin/|\$\(BIN\)/)?(?P<program>" + "|".join(_PROGRAMS)
                     + r")(?:\s|$)")
# Where a line stops being one command: a comment, a redirection, a pipe or the next command; a lone
# "…" ("`flask passid …`", the commands of a group) ends what can be checked.
_STOP_WORDS = ("|", "||", "&&", ";", "&")
_INLINE_CODE = re.compile(r"`([^`\n]+)`")


@dataclass(frozen=True)
class DocumentedCommand:
    """One command line as written (`where` is file:line, for the failure message) and its words."""

    where: str
    text: str
    words: tuple[str, ...]

    @property
    def program(self) -> str:
        return self.words[0].rsplit("/", 1)[-1]


def documents() -> list[Path]:
    """Every place that shows a user a command: README, docs/, security/ scripts, bench/ modules."""
    found = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    found += sorted((ROOT / "security").glob("*.sh"))
    found += sorted((ROOT / "bench").glob("*.py"))
    return [path for path in found if path.is_file()]


def documented_commands() -> list[DocumentedCommand]:
    return [command for path in documents() for command in commands_in(path)]


def commands_in(path: Path) -> Iterator[DocumentedCommand]:
    """Lines of fenced code blocks and shell scripts, and `inline code` in prose, that start a command."""
    lines = path.read_text(encoding="utf-8").splitlines()
    in_fence = path.suffix == ".sh"
    pending = ""
    for number, line in enumerate(lines, start=1):
        if path.suffix == ".md" and line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        candidates = [line] if in_fence else _INLINE_CODE.findall(line)
        if in_fence and (pending or line.rstrip().endswith("\\")):
            pending += line.rstrip().removesuffix("\\") + " "
            if line.rstrip().endswith("\\"):
                continue
            candidates, pending = [pending], ""
        for text in candidates:
            command = parse_command(f"{path.relative_to(ROOT)}:{number}", text)
            if command is not None:
                yield command


def parse_command(where: str, text: str) -> DocumentedCommand | None:
    """The words of `text` if it starts one of our programs; None for anything else."""
    text = text.strip()
    if not _PREFIX.match(text):
        return None
    text = text.removeprefix("ExecStart=")
    try:
        words = shlex.split(text, comments=True)
    except ValueError:  # an unbalanced quote in prose: not a command anyone can paste
        return None
    kept: list[str] = []
    for word in words:
        placeholder = word.startswith("<") and word.endswith(">")  # `flask passid session <id>`
        if word in _STOP_WORDS or word == "…" or (word.startswith((">", "2>", "<")) and not placeholder):
            break
        kept.append(word)
    return DocumentedCommand(where, text, tuple(kept)) if kept else None


def alternatives(words: tuple[str, ...]) -> list[tuple[str, ...]]:
    """`--role counter|analyst|admin` is three commands; options shown in brackets (`[--rounds 300]`) are kept."""
    expanded: list[tuple[str, ...]] = [()]
    for word in words:
        word = word.strip("[]")
        choices = word.split("|") if "|" in word and not word.startswith("-") else [word]
        expanded = [(*done, choice) for done in expanded for choice in choices]
    return expanded


def flask_app_and_args(words: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """('app', ('passid', 'redact', …)) from `flask --app app passid redact …`; the app is 'app' when unsaid."""
    args = list(words[1:])
    app = "app"
    if len(args) >= 2 and args[0] == "--app":
        app, args = args[1], args[2:]
    return app, tuple(args)


def options_in(words: tuple[str, ...]) -> list[str]:
    """The long options a line uses, without their `=value`."""
    return [word.split("=", 1)[0] for word in words if word.startswith("--") and len(word) > 2]
