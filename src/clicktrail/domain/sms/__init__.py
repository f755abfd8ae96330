"""SMS text engine: what a text costs as SMS, and how to make it cost less.

Pure domain code (standard library only):

- `analyze(text, *, shift_table=None) -> SmsInfo`: encoding (GSM-7 / UCS-2), segments, units,
  units left and the text of each part, per 3GPP TS 23.038 and TS 23.040 (`segments.py`).
- `smart_encode(text, *, protected=(), shift_table=None) -> SmartEncoding`: look-alike
  substitution that is applied only when it saves segments (`smart.py`).
- `check_characters(text, field)`: refuses a lone UTF-16 surrogate in a text to store or send
  (analysis counts it as one UCS-2 unit; nothing can store or deliver it).
- National language shift tables (`shift_tables.py`), the default alphabet (`gsm7.py`) and
  grapheme clusters (`graphemes.py`) are the data and rules underneath.
"""

from __future__ import annotations

from clicktrail.domain.sms.errors import (
    InvalidSpanError,
    LoneSurrogateError,
    SmsTextError,
    UnknownShiftTableError,
    UnsupportedShiftTableError,
    check_characters,
)
from clicktrail.domain.sms.segments import GSM7, UCS2, SmsInfo, analyze
from clicktrail.domain.sms.shift_tables import supported_languages
from clicktrail.domain.sms.smart import SmartEncoding, Substitution, smart_encode

__all__ = [
    "GSM7",
    "UCS2",
    "InvalidSpanError",
    "LoneSurrogateError",
    "SmartEncoding",
    "SmsInfo",
    "SmsTextError",
    "Substitution",
    "UnknownShiftTableError",
    "UnsupportedShiftTableError",
    "analyze",
    "check_characters",
    "smart_encode",
    "supported_languages",
]
