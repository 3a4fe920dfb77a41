"""The back-office console: history, outcomes, performance, webhook log, go-live checklist."""

# They register their routes on bp.
from app.console import audit_log, history_export, redaction, review_queue, staff_accounts  # noqa: F401
from app.console.routes import bp

__all__ = ["bp"]
