"""Fixtures of the experiment tests: `api`, the whole app over a fresh database (SQLite and
PostgreSQL) with a workspace, its short domain and an API key (tests/inprocess_api.py)."""

from inprocess_api import api

__all__ = ["api"]
