"""Build the pseudo-locale `en-XA` for layout tests: every string accented and about 40% longer.

Long words are what break a narrow layout (German compounds, Polish and Swahili phrases), so
a test that passes at 320 px in the pseudo-locale leaves room for real translations. The
placeholders (`%(name)s`) stay as they are, so every string still formats.

`python -m app.pseudo_locale` reads `app/translations/*.pot` and writes compiled catalogues
under `app/translations/en_001/` (`app.plumbing.i18n` explains the directory); `make` runs it with the
other catalogues, so nothing is committed.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

TRANSLATIONS = Path(__file__).resolve().parent / "translations"
CATALOGUE_DIR = TRANSLATIONS / "en_001" / "LC_MESSAGES"
GROWTH = 0.4

_ACCENTED = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "àƀçđéƒĝĥîĵķļɱñöþǫŕšţûṽŵẋýžÀƁÇĐÉƑĜĤÎĴĶĻṀÑÖÞǪŔŠŢÛṼŴẊÝŽ",
)
# Placeholders and markup pass through untouched.
_KEEP = re.compile(r"(%\([a-z_]+\)[sd]|%[sd%]|<[^>]+>|&[a-z]+;)")
_PADDING = ["ŀöñĝéŕ", "ŵöŕđš", "ƒöŕ", "ţéšţîñĝ", "ţĥé", "ļàýöûţ", "ƀýéöñđ", "ţĥé", "ŵîđţĥ"]


def pseudo(text: str) -> str:
    """`text` accented, with words added until it is about 40% longer, in brackets that show any cut."""
    if not text:
        return text
    parts = _KEEP.split(text)
    accented = "".join(part if _KEEP.fullmatch(part) else part.translate(_ACCENTED) for part in parts)
    wanted = math.ceil(len(text) * GROWTH)
    padding: list[str] = []
    while sum(len(word) + 1 for word in padding) < wanted:
        padding.append(_PADDING[len(padding) % len(_PADDING)])
    return f"[{accented} {' '.join(padding)}]"


def pseudo_catalogue(template: Catalog) -> Catalog:
    catalogue = Catalog(locale="en_001", domain=template.domain)
    for message in template:
        if not message.id:
            continue
        if isinstance(message.id, tuple | list):
            catalogue.add(message.id, tuple(pseudo(form) for form in message.id), context=message.context)
        else:
            catalogue.add(message.id, pseudo(message.id), context=message.context)
    return catalogue


def build() -> list[Path]:
    CATALOGUE_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for template_path in sorted(TRANSLATIONS.glob("*.pot")):
        with template_path.open("rb") as source:
            template = read_po(source)
        target = CATALOGUE_DIR / f"{template_path.stem}.mo"
        with target.open("wb") as out:
            write_mo(out, pseudo_catalogue(template))
        written.append(target)
    return written


if __name__ == "__main__":
    for path in build():
        print(f"pseudo-locale: {path.relative_to(TRANSLATIONS.parent.parent)}")
