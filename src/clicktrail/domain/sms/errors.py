"""Errors of the SMS text engine.

    ValueError
    └── SmsTextError                  code "sms.text"
        ├── UnknownShiftTableError    code "sms.unknown_shift_table"
        └── UnsupportedShiftTableError code "sms.unsupported_shift_table"

Each carries a stable `code`; entry points map codes to exit statuses or HTTP problems.
"""

from __future__ import annotations

from typing import ClassVar


class SmsTextError(ValueError):
    """Base of the SMS text engine's errors."""

    code: ClassVar[str] = "sms.text"


class UnknownShiftTableError(SmsTextError):
    """The requested national language has no shift table in 3GPP TS 23.038."""

    code: ClassVar[str] = "sms.unknown_shift_table"

    def __init__(self, language: str) -> None:
        super().__init__(
            f"no national language shift table for {language!r} in 3GPP TS 23.038 "
            "(known: Turkish, Spanish, Portuguese, Bengali, Gujarati, Hindi, Kannada, "
            "Malayalam, Oriya, Punjabi, Tamil, Telugu, Urdu)"
        )
        self.language = language


class UnsupportedShiftTableError(SmsTextError):
    """The language's shift tables exist in the standard but are not implemented here."""

    code: ClassVar[str] = "sms.unsupported_shift_table"

    def __init__(self, language: str) -> None:
        super().__init__(
            f"the {language!r} shift tables are not implemented yet "
            "(implemented: Turkish, Spanish, Portuguese)"
        )
        self.language = language
