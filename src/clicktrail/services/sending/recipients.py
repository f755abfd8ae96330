"""Recipients of a send: whether a number can be sent to (invalid ones are skipped and counted,
never wrapped) and the time zones of its number range (quiet hours hold in all of them).

A number is checked once per phone rules (`PHONE_RULES`, phonenumbers' metadata): imports and
wrap calls store the rules a contact's number was found valid under, and a send trusts that
while the rules in force are the same. (Checking every number of every send cost about as much
CPU as wrapping it.)"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

from clicktrail.domain.models import Contact
from clicktrail.services.contacts import PHONE_RULES

__all__ = ["PHONE_RULES", "is_valid_phone", "sendable", "time_zones"]


def is_valid_phone(phone: str) -> bool:
    """Return True when `phone` (E.164) is a valid number (phonenumbers' metadata)."""
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(phone, None)))
    except phonenumbers.NumberParseException:
        return False


def sendable(contacts: Sequence[Contact]) -> tuple[list[Contact], list[int]]:
    """Return the contacts whose numbers are valid under `PHONE_RULES`, and the ids of those
    among them that had to be checked (their validity is not yet recorded under these rules)."""
    valid: list[Contact] = []
    checked: list[int] = []
    for c in contacts:
        if c.valid_under == PHONE_RULES:
            valid.append(c)
        elif is_valid_phone(c.phone):
            valid.append(c)
            checked.append(c.id)
    return valid, checked


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
