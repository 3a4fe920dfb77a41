"""Branch mode: the widget for a tablet on a counter, staff only."""

from app.branch.routes import bp

__all__ = ["bp"]
