"""Recipients of a send: whether a number can be sent to (invalid ones are skipped and counted,
never wrapped) and the time zones of its number range (quiet hours hold in all of them)."""

from __future__ import annotations

from datetime import UTC, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones


def is_valid_phone(phone: str) -> bool:
    """Return True when `phone` (E.164) is a valid number (phonenumbers' metadata)."""
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(phone, None)))
    except phonenumbers.NumberParseException:
        return False


@lru_cache(maxsize=4096)
def _zones(names: tuple[str, ...]) -> tuple[tzinfo, ...]:
    zones: list[tzinfo] = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return tuple(zones) or (UTC,)


def time_zones(phone: str) -> tuple[tzinfo, ...]:
    """Return the time zones of `phone`'s number range (phonenumbers' geocoding data); UTC when
    the range has none (``Etc/Unknown``)."""
    try:
        names = phone_timezones.time_zones_for_number(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        names = ()
    return _zones(tuple(n for n in names if n != "Etc/Unknown"))
