"""The web dashboard: server-rendered pages over the reports service (see docs/dashboard.md)."""

from clicktrail.web.dashboard.routes import routes
from clicktrail.web.dashboard.session import load_secret

__all__ = ["load_secret", "routes"]
