"""The back-office console: history, outcomes, performance, webhook log, go-live checklist."""

from app.console.routes import bp

__all__ = ["bp"]
