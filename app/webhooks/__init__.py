"""The institution's webhook receiver: `POST /webhooks/passid`."""

from app.webhooks.routes import bp

__all__ = ["bp"]
