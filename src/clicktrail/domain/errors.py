"""The one error tree of clicktrail.

Every error a user can cause carries a stable machine-readable ``code``, a human ``message`` and,
where one input is at fault, the ``field`` (a JSON pointer-ish path, a CSV line, a CLI option).
Only ``web/errors.py`` maps these to HTTP (RFC 9457 problem+json) and only ``cli`` maps them to
exit codes::

    ClicktrailError                 code
    ├── InvalidInput                invalid_input      400/422, exit 2
    │   ├── (carries .problems: one Problem per bad field/line)
    │   ├── UnknownClick            unknown_click      422, exit 2 (a conversion's click id)
    │   └── UnknownContact          unknown_contact    422, exit 2 (a conversion's contact)
    ├── NotFound                    not_found          404, exit 3
    ├── Conflict                    conflict           409, exit 4
    ├── Unauthorized                unauthorized       401, exit 5
    ├── TooLarge                    too_large          413, exit 1
    └── StorageUnavailable          storage_unavailable 503 + Retry-After, exit 1
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one input: where (`field`, e.g. ``line 12: phone``) and what."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """Return the problem as a JSON-ready mapping."""
        return {"field": self.field, "message": self.message}


class ClicktrailError(Exception):
    """Base of every error a user can cause. `code` is stable; `message` is for people."""

    code = "error"

    def __init__(
        self, message: str, field: str | None = None, problems: list[Problem] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.problems = problems or []

    def __str__(self) -> str:
        return self.message


class InvalidInput(ClicktrailError):
    """The input is malformed or violates a rule; nothing was written."""

    code = "invalid_input"


class UnknownClick(InvalidInput):
    """A conversion names a click id that is not one of the workspace's clicks (unknown and
    another workspace's are not told apart)."""

    code = "unknown_click"


class UnknownContact(InvalidInput):
    """A conversion names a contact (external id or phone) the workspace does not have."""

    code = "unknown_contact"


class NotFound(ClicktrailError):
    """A named thing (workspace, campaign, message, token…) does not exist."""

    code = "not_found"


class Conflict(ClicktrailError):
    """The request clashes with existing state (duplicate name, campaign already sent…)."""

    code = "conflict"


class Unauthorized(ClicktrailError):
    """Missing, malformed or revoked credentials."""

    code = "unauthorized"


class TooLarge(ClicktrailError):
    """A request body (or upload) is over its limit; it was not read further."""

    code = "too_large"

    def __init__(self, message: str, limit: int, field: str | None = "body") -> None:
        super().__init__(message, field=field)
        self.limit = limit


class StorageUnavailable(ClicktrailError):
    """The database did not answer (stopped, unreachable, out of connections); nothing was
    written by the failed operation and trying again later is the remedy."""

    code = "storage_unavailable"
