"""The verification widget: the React component's behaviour as pages and htmx partials."""

from app.widget import branding, embed  # noqa: F401  (routes register on the blueprint)
from app.widget.routes import bp

__all__ = ["bp"]
