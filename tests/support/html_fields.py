"""Reading a page's hidden form fields as a browser would send them back.

One reader for every test: the widget's signed fields (`o`, `n`), the CSRF token of
staff forms, branch mode's nonce. Attribute order differs between templates (WTForms
writes `name` before `value`, some templates the other way round), so both orders match.
"""

from __future__ import annotations

import re


def hidden(html: str, name: str) -> str:
    """The value of the field called `name`; fails the test when the page has none."""
    escaped = re.escape(name)
    match = re.search(rf'name="{escaped}"[^>]*value="([^"]*)"', html) or re.search(
        rf'value="([^"]*)"[^>]*name="{escaped}"', html
    )
    assert match, f"no field {name!r} in the page"
    return match.group(1)


def widget_fields_in(html: str) -> dict[str, str]:
    """The widget page's signed fields: `o` (signed options) and `n` (the form's nonce)."""
    return {"o": hidden(html, "o"), "n": hidden(html, "n")}
