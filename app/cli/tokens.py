"""The TOKEN argument of `flask passid verify` and `outcome`: what the customer reads out, in any spelling."""

from __future__ import annotations

import click

from app.passid import normalise_token


def token_argument(raw: str) -> str:
    token = normalise_token(raw[:100])
    if token is None:
        raise click.BadParameter(
            "not a PASSID token: it has 12 or 16 letters and digits, like PASSID-AB3X-7YQM-K9PQ-3MNX",
            param_hint="TOKEN",
        )
    return token
