"""The translation catalogues are complete, current and safe to format.

`messages` (what customers read) must be complete in every locale but the source one; `staff`
in every STAFF_LOCALES one. A missing or fuzzy entry would show English in the middle of another
language; a placeholder that differs from the English one would raise KeyError on the page, or
drop the institution's name. The templates (`*.pot`) must hold what the code says today, or a new
string would reach customers untranslated without any .po showing a gap.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from app.plumbing.i18n import LOCALES, SOURCE_LOCALE, STAFF_LOCALES

pytestmark = pytest.mark.databases("sqlite")

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "app" / "translations"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]")
CATALOGUES = [("messages", locale) for locale in LOCALES if locale != SOURCE_LOCALE] + [
    ("staff", locale) for locale in STAFF_LOCALES if locale != SOURCE_LOCALE
]


def read(path: Path) -> Catalog:
    with path.open("rb") as source:
        return read_po(source)


def forms(text: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    if text is None:
        return ()
    return (text,) if isinstance(text, str) else tuple(text)


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def problems_with(message: Message, plurals: int) -> list[str]:
    """What is wrong with one entry: missing, fuzzy, a missing plural form, or placeholders unlike English."""
    found = []
    english = forms(message.id)
    translated = forms(message.string)
    if message.fuzzy:
        found.append("fuzzy")
    if not translated or not all(form.strip() for form in translated):
        return [*found, "missing"]
    if len(english) > 1 and len(translated) != plurals:
        found.append(f"{len(translated)} plural forms, the locale has {plurals}")
    wanted = set().union(*(placeholders(form) for form in english))
    for form in translated:
        have = placeholders(form)
        if have - wanted:
            found.append(f"unknown placeholder(s) {sorted(have - wanted)}")
        # A plural form may leave the count out ("one minute"); every other placeholder must be kept.
        missing = wanted - have - ({"num"} if len(english) > 1 else set())
        if missing:
            found.append(f"placeholder(s) {sorted(missing)} dropped")
    return found


@pytest.mark.parametrize(("domain", "locale"), CATALOGUES, ids=[f"{d}-{loc}" for d, loc in CATALOGUES])
def test_every_entry_is_translated_not_fuzzy_and_keeps_its_placeholders(domain: str, locale: str) -> None:
    template = read(TRANSLATIONS / f"{domain}.pot")
    path = TRANSLATIONS / locale / "LC_MESSAGES" / f"{domain}.po"
    assert path.exists(), (f"{path.relative_to(ROOT)} is missing: "
                           "see docs/languages-and-look.md, 'Adding an eleventh language'")
    catalogue = read(path)
    # A fuzzy header makes `pybabel compile` skip the whole file (exit 0): every entry would show English.
    assert not catalogue.fuzzy, f"{path.relative_to(ROOT)}: the header is marked fuzzy"
    problems = []
    for wanted in template:
        if not wanted.id:
            continue
        entry = catalogue.get(wanted.id, context=wanted.context)
        if entry is None:
            problems.append(f"{wanted.id!r}: not in the catalogue (run `make messages`)")
            continue
        problems += [f"{wanted.id!r}: {problem}" for problem in problems_with(entry, catalogue.num_plurals)]
    assert not problems, f"{domain} {locale}:\n" + "\n".join(problems)


def test_a_broken_entry_is_caught() -> None:
    """The checks above can fail: each kind of fault, on a made-up catalogue."""
    catalogue = Catalog(locale="fr")
    catalogue.add("Hello %(name)s", "")
    catalogue.add("Bye %(name)s", "Au revoir %(nom)s")
    catalogue.add("Fine", "Bien", flags=["fuzzy"])
    catalogue.add(("%(num)d minute", "%(num)d minutes"), ("une minute", "%(num)d minutes"))
    found = {m.id if isinstance(m.id, str) else m.id[0]: problems_with(m, 2) for m in catalogue if m.id}
    assert found["Hello %(name)s"] == ["missing"]
    assert found["Bye %(name)s"] == ["unknown placeholder(s) ['nom']", "placeholder(s) ['name'] dropped"]
    assert found["Fine"] == ["fuzzy"]
    assert found["%(num)d minute"] == []


@pytest.mark.parametrize("domain", ["messages", "staff"])
def test_the_templates_hold_every_string_the_code_marks(domain: str, tmp_path: Path) -> None:
    """`make messages` has been run since the last string was marked: extract again and compare."""
    config = {"messages": "babel-customer.cfg", "staff": "babel-staff.cfg"}[domain]
    fresh = tmp_path / f"{domain}.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F", config, "-k", "_", "-k", "gettext",
         "-k", "lazy_gettext", "-k", "ngettext:1,2", "-k", "lazy_ngettext:1,2", "-o", str(fresh), "."],
        cwd=ROOT, check=True,
    )
    extracted = {m.id for m in read(fresh) if m.id}
    committed = {m.id for m in read(TRANSLATIONS / f"{domain}.pot") if m.id}
    assert extracted - committed == set(), "strings missing from the template: run `make messages`"
    assert committed - extracted == set(), "strings no longer in the code: run `make messages`"


def test_the_glossary_covers_every_locale() -> None:
    glossary = (TRANSLATIONS / "GLOSSARY.md").read_text(encoding="utf-8")
    headers = [line for line in glossary.splitlines() if line.startswith("| Term (en) |")]
    assert len(headers) >= 2, "GLOSSARY.md has no terms tables (customer and staff)"
    for header in headers:
        columns = [cell.strip() for cell in header.strip("|").split("|")][1:]
        assert columns == [locale for locale in LOCALES if locale != SOURCE_LOCALE], header


FRENCH_CATALOGUES = [(domain, locale) for domain, locale in CATALOGUES if locale == "fr"]


@pytest.mark.parametrize(("domain", "locale"), FRENCH_CATALOGUES, ids=[d for d, _ in FRENCH_CATALOGUES])
def test_french_keeps_its_punctuation_on_the_line_of_its_word(domain: str, locale: str) -> None:
    """French sets a space before « : ; ? ! »; a plain one lets a narrow column or a phone wrap the line there,
    leaving the colon alone at the start of the next line. The catalogue uses a no-break space before ":"
    and a narrow no-break space before ";", "?" and "!"."""
    catalogue = read(TRANSLATIONS / locale / "LC_MESSAGES" / f"{domain}.po")
    loose = [form for message in catalogue if message.id for form in forms(message.string)
             if re.search(r" [:;?!]", form)]
    assert loose == []
