"""This app's own origin, for the widget's embed allow-list and the branch counter's QR page alike."""

from __future__ import annotations

from flask import request

from app.config import current_settings


def own_origin() -> str:
    """This app's origin: PASSID_PUBLIC_URL when set, whatever Host the request names.

    Without it, the request's own scheme and host: Flask has already answered 400 to a
    host not in TRUSTED_HOSTS, so this is one of the names the app is configured to serve.
    """
    public = current_settings().public_url
    if public:
        # A browser's origin never names the default port.
        return public.removesuffix(":443") if public.startswith("https:") else public.removesuffix(":80")
    return request.host_url.rstrip("/")
