"""Every relative link in the README and `docs/` leads somewhere.

The README is a short quick start and the rest lives in `docs/`, with each fact in one place and
the others linking to it. A link to a moved file or a renamed heading would send a reader nowhere
without any program noticing, so each relative link must name a file that exists and, for a
`#fragment`, a heading in it (GitHub's anchors: lower case, punctuation dropped, spaces to hyphens,
`-1`, `-2` … for repeats). Links inside code are not links, and web addresses are not checked here.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.documented_commands import ROOT

_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _prose_lines(path: Path) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, with their numbers."""
    kept, fenced = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            kept.append((number, line))
    return kept


def anchors(path: Path) -> set[str]:
    """The `#fragment`s GitHub gives the headings of `path`."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for _number, line in _prose_lines(path):
        heading = _HEADING.match(line)
        if heading is None:
            continue
        base = re.sub(r"[^\w\- ]", "", heading.group(2).strip().lower()).replace(" ", "-")
        repeats = seen.get(base, 0)
        seen[base] = repeats + 1
        found.add(base if repeats == 0 else f"{base}-{repeats}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """Each link target in the prose of `path` (not in code), with its line number."""
    return [(number, target) for number, line in _prose_lines(path)
            for target in _LINK.findall(_INLINE_CODE.sub("", line))]


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """`file:line: target (why)` for each relative link of `path` (a file under `root`) that leads nowhere."""
    broken = []
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # https:, mailto: …
            continue
        file_part, _, fragment = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}:{number}: {target}"
        if not destination.exists():
            broken.append(f"{where} (no such file)")
        elif fragment and (destination.suffix != ".md" or fragment not in anchors(destination)):
            broken.append(f"{where} (no heading #{fragment} in {destination.name})")
    return broken


def test_every_relative_link_in_the_documents_leads_somewhere() -> None:
    files = markdown_files()
    assert len(files) > 1, "docs/ holds no page"
    assert sum(len(links(path)) for path in files) > 20, "the link reader found (almost) no links"
    broken = [problem for path in files for problem in broken_links(path)]
    assert not broken, "\n".join(broken)


def test_the_readme_leads_to_every_page_under_docs() -> None:
    """A page nothing links to is a page no newcomer finds."""
    linked = {(ROOT / target.partition("#")[0]).resolve() for _number, target in links(ROOT / "README.md")}
    orphans = [str(path.relative_to(ROOT)) for path in markdown_files()[1:] if path.resolve() not in linked]
    assert not orphans, f"README.md links to none of {orphans}"


def test_the_checker_finds_a_missing_file_and_a_missing_heading(tmp_path: Path) -> None:
    """Positive control: the checks above fail when a link is wrong, and code is not read as a link."""
    (tmp_path / "README.md").write_text("# Home\n", encoding="utf-8")
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "control.md"
    page.write_text(
        "# Control page\n\n## Two `words` here\n\n## Two words here\n\n"
        "[fine](#two-words-here) [repeat](#two-words-here-1) [home](../README.md#home)\n"
        "[gone](no-such-page.md) [nowhere](#no-such-heading) [file, wrong heading](../README.md#not-a-heading)\n"
        "`[in code](no-such-file.md)`\n\n```\n[in a fence](no-such-file.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page, tmp_path) == [
        "docs/control.md:8: no-such-page.md (no such file)",
        "docs/control.md:8: #no-such-heading (no heading #no-such-heading in control.md)",
        "docs/control.md:8: ../README.md#not-a-heading (no heading #not-a-heading in README.md)",
    ]
