"""The back-office console: history, outcomes, performance, the funnel, webhook log, go-live checklist."""

# They register their routes on bp.
from app.console import audit_log, funnel, history_export, redaction, review_queue, staff_accounts  # noqa: F401
from app.console.routes import bp

__all__ = ["bp"]
