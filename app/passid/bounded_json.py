"""One bounded JSON parser for every body the app reads: PASSID's webhooks and answers, and the JSON
bodies of our own APIs.

Python's `json` recurses once per level of nesting, so a body of a few thousand `[` reaches the
interpreter's recursion limit and raises RecursionError, which no caller expects (a 500 with a
traceback). And a body just under that limit parses, then fails whatever walks it next (storage,
rendering, a comparison). So nesting is capped well above anything PASSID or an integrator sends,
and everything wrong with a body (not UTF-8, not JSON, NaN or Infinity, too deep) is one ValueError.
"""

from __future__ import annotations

import json
from typing import Any

#: The deepest nesting a body may have. PASSID's deepest event is 3 levels (envelope, data, claims) and
#: our APIs take flat objects; the margin leaves room for new fields without letting a body reach the
#: interpreter's recursion limit.
MAX_NESTING = 32


class TooDeep(ValueError):
    """A body nesting objects or arrays deeper than the bound (a ValueError, like any other bad JSON)."""


def loads_bounded(raw: bytes | str, max_nesting: int = MAX_NESTING, **options: Any) -> Any:
    """`json.loads(raw)`, refusing NaN and Infinity (they would pass number checks) and nesting deeper than
    `max_nesting`; ValueError (TooDeep for depth) for anything that is not such JSON, never RecursionError.
    `options` go to `json.loads` (an `object_hook`, say)."""
    options.setdefault("parse_constant", _reject_constant)
    try:
        payload = json.loads(raw, **options)
    except RecursionError:
        raise TooDeep(f"nests deeper than {max_nesting} levels") from None
    if nesting(payload, max_nesting) > max_nesting:
        raise TooDeep(f"nests deeper than {max_nesting} levels")
    return payload


def nesting(value: object, bound: int = MAX_NESTING) -> int:
    """How deep objects and arrays nest in `value` (a scalar is 0), counted without recursion (so without
    its limit), and no further than one level past `bound`, which is enough to refuse."""
    deepest = 0
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if depth <= bound:
            pending.extend((child, depth + 1) for child in children)
    return deepest


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")
