"""Errors of the SMS text engine, as branches of the one error tree (`domain/errors.py`).

    ClicktrailError
    └── InvalidInput                   code "invalid_input"
        └── SmsTextError               (field names the offending input)
            ├── UnknownShiftTableError     field "shift_table"
            ├── UnsupportedShiftTableError field "shift_table"
            ├── InvalidSpanError           field "protected"
            └── LoneSurrogateError         field named by the caller (e.g. "template")

They are input errors, so entry points map them like any `InvalidInput` (HTTP 422, exit 2).
"""

from __future__ import annotations

from clicktrail.domain.errors import InvalidInput


class SmsTextError(InvalidInput):
    """Base of the SMS text engine's errors."""


class UnknownShiftTableError(SmsTextError):
    """The requested national language has no shift table in 3GPP TS 23.038."""

    def __init__(self, language: str) -> None:
        super().__init__(
            f"no national language shift table for {language!r} in 3GPP TS 23.038 "
            "(known: Turkish, Spanish, Portuguese, Bengali, Gujarati, Hindi, Kannada, "
            "Malayalam, Oriya, Punjabi, Tamil, Telugu, Urdu)",
            field="shift_table",
        )
        self.language = language


class UnsupportedShiftTableError(SmsTextError):
    """The language's shift tables exist in the standard but are not implemented here."""

    def __init__(self, language: str) -> None:
        super().__init__(
            f"the {language!r} shift tables are not available",
            field="shift_table",
        )
        self.language = language


class InvalidSpanError(SmsTextError):
    """A protected span does not lie within the text."""

    def __init__(self, start: int, end: int, length: int) -> None:
        super().__init__(
            f"span ({start}, {end}) is not within a text of length {length}", field="protected"
        )
        self.start, self.end, self.length = start, end, length


class LoneSurrogateError(SmsTextError):
    """A text to store or send holds a lone UTF-16 surrogate (U+D800-U+DFFF on its own): valid
    in JSON (`"\\ud83d"`, what a truncated emoji looks like) but not a character, so no
    database, provider or phone can take it. Counting it is fine (`analyze` counts one UCS-2
    unit, as the reference calculators do); storing it is not."""

    def __init__(self, position: int, code_point: int, field: str) -> None:
        super().__init__(
            f"{field}: a lone UTF-16 surrogate U+{code_point:04X} at character {position} is not "
            "a character (a truncated emoji?): remove it or complete the pair",
            field=field,
        )
        self.position, self.code_point = position, code_point


def check_characters(text: str, field: str) -> str:
    """Return `text` when it holds no lone surrogate. Raises `LoneSurrogateError` naming
    `field` and the first one's position otherwise."""
    for i, ch in enumerate(text):
        if "\ud800" <= ch <= "\udfff":
            raise LoneSurrogateError(i, ord(ch), field)
    return text
