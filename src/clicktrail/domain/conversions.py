"""Conversions: an outcome (an order, a signup) tied to a click id or a contact, with a value.

The rules of one conversion, without I/O (docs/conversions.md):

- **Event names** are 1-64 lowercase letters, digits, ``_``, ``.`` or ``-`` (given in any case,
  stored lowercase); a conversion without one is a ``conversion``.
- **Money** is stored as an integer number of **micros** (millionths of the currency unit:
  12.50 EUR is 12,500,000), whatever the currency's minor unit, so JPY, EUR and KWD (three
  decimals) all fit exactly and sums never go through floats. A value is decimal text or a
  number, at least 0, at most `MAX_VALUE` units, with at most six decimals (more would be
  rounded: refused instead). A value needs an ISO 4217 `currency` and a currency needs a value.
- **Time**: when the conversion happened, not after the receiving clock by more than
  `MAX_SKEW_US`, not before 2000 (an epoch in milliseconds read as seconds, or a zero).
- **Deduplication never expires** (`dedup_key`): with a transaction id a conversion is unique on
  (workspace, event, transaction id) — an order is one order whether a postback, the pixel and
  the API all report it; without one on (workspace, event, click id), else (workspace, event,
  contact). Per event a duplicate mode says what a second one does (`DUPLICATE_MODES`).
- **Outcomes** of one conversion: `OUTCOMES`.
"""

from __future__ import annotations

import re
from base64 import urlsafe_b64decode
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

from clicktrail.domain.errors import InvalidInput

DEFAULT_EVENT = "conversion"
EVENT_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MAX_TXN = 128
MAX_CLICK_ID = 64
MAX_VALUE = 10**12  # units of the currency; in micros 10**18, inside a signed 64-bit integer
MICROS = 1_000_000
MAX_SKEW_US = 5 * 60 * MICROS  # a sender's clock may run this far ahead of ours
EARLIEST_US = 946_684_800 * MICROS  # 2000-01-01T00:00:00Z
MAX_METADATA_KEYS = 32
MAX_METADATA_KEY = 64
MAX_METADATA_TEXT = 256
MAX_METADATA_BYTES = 4096

DuplicateMode = Literal["ignore", "count", "replace"]
# What a second conversion with the same dedup key does: `ignore` answers `duplicate` and
# changes nothing (the default); `count` stores it as another conversion unless it carries a
# transaction id (a transaction id always identifies one conversion: a retried postback never
# counts twice); `replace` sets the stored conversion's value and currency to the new ones.
DUPLICATE_MODES: Final = ("ignore", "count", "replace")
DEFAULT_MODE: DuplicateMode = "ignore"

Source = Literal["api", "postback", "pixel", "beacon", "import"]
SOURCES: Final = ("api", "postback", "pixel", "beacon", "import")

# Every answer to one conversion names exactly one of these. `accepted`: stored; `replaced`:
# a duplicate whose value replaced the stored one (mode `replace`); `duplicate`: already
# counted, nothing changed; `unknown_click`: the click id is not one of this workspace's clicks
# (unknown and another workspace's answer the same); `unknown_contact`: no such contact in the
# workspace; `invalid`: a field is wrong (named); `outside_window`: reserved for attribution,
# which decides windows (docs/attribution.md); ingest never answers it.
OUTCOMES: Final = (
    "accepted", "replaced", "duplicate", "unknown_click", "unknown_contact", "outside_window",
    "invalid",
)  # fmt: skip

# ISO 4217's current codes (list one as published 2026-01-01: funds and precious metals
# included; XTS, the testing code, and XXX, "no currency", left out). Data here, as the domain
# imports nothing outside the standard library; tests/conversions/test_conversion_rules.py holds
# it equal to the table the `iso4217` package ships (a newer table: update both).
CURRENCIES: Final = frozenset(
    """AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN
    BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR
    FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU
    MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON
    RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP
    TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAD XAF XAG XAU XBA XBB
    XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG""".split()  # noqa: SIM905 (a table, as ISO prints it)
)


def event_name(raw: object, field: str = "event") -> str:
    """Return the event name `raw` lowercased (``conversion`` when missing or empty).
    Raises `InvalidInput` naming `field`."""
    if raw is None or raw == "":
        return DEFAULT_EVENT
    if not isinstance(raw, str):
        raise InvalidInput(f"{field}: expected text, got {raw!r}", field=field)
    name = raw.strip().lower()
    if not EVENT_NAME.fullmatch(name):
        raise InvalidInput(
            f"{field}: {raw[:80]!r} must be 1-64 letters, digits, '_', '.' or '-', starting "
            "with a letter or digit",
            field=field,
        )
    return name


def duplicate_mode(raw: str, field: str = "mode") -> DuplicateMode:
    """Return `raw` as a duplicate mode. Raises `InvalidInput` naming `field`."""
    text = raw.strip().lower() if isinstance(raw, str) else raw
    for mode in ("ignore", "count", "replace"):
        if text == mode:
            return mode
    raise InvalidInput(
        f"{field}: {raw!r} is not a duplicate mode (ignore, count or replace)", field=field
    )


def txn_id(raw: object, field: str = "txn") -> str | None:
    """Return the transaction (order) id, stripped (None when missing or empty). Raises
    `InvalidInput` for one over `MAX_TXN` characters or with control characters."""
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str):
        raise InvalidInput(f"{field}: expected text, got {raw!r}", field=field)
    text = raw.strip()
    if not text:
        return None
    if len(text) > MAX_TXN or not text.isprintable():
        raise InvalidInput(
            f"{field}: at most {MAX_TXN} printable characters, no control characters",
            field=field,
        )
    return text


def value_micros(raw: object, field: str = "value") -> int | None:
    """Return a money amount in micros (None when missing or empty).

    `raw` is decimal text (``"12.50"``) or a JSON number. Raises `InvalidInput` naming `field`
    for anything else, a negative amount, more than `MAX_VALUE` or more than six decimals.
    """
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise InvalidInput(f"{field}: expected a decimal amount, got {raw!r}", field=field)
    try:
        # A float goes through its shortest repr (19.99, not 19.989999…).
        amount = Decimal(raw.strip() if isinstance(raw, str) else str(raw))
    except InvalidOperation:
        raise InvalidInput(
            f"{field}: {str(raw)[:40]!r} is not a decimal amount (e.g. 12.50)", field=field
        ) from None
    if not amount.is_finite():
        raise InvalidInput(f"{field}: {raw!r} is not a finite amount", field=field)
    if amount < 0:
        raise InvalidInput(f"{field}: must not be negative, got {raw!r}", field=field)
    if amount > MAX_VALUE:
        raise InvalidInput(f"{field}: at most {MAX_VALUE:,} (got {raw!r})", field=field)
    micros = amount * MICROS
    if micros != micros.to_integral_value():
        raise InvalidInput(f"{field}: at most six decimals, got {raw!r}", field=field)
    return int(micros)


def currency_code(raw: object, field: str = "currency") -> str | None:
    """Return an ISO 4217 code uppercased (None when missing or empty). Raises `InvalidInput`
    naming `field` for anything else."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or raw.strip().upper() not in CURRENCIES:
        raise InvalidInput(
            f"{field}: {str(raw)[:20]!r} is not an ISO 4217 currency code (e.g. USD, EUR)",
            field=field,
        )
    return raw.strip().upper()


def money(
    raw_value: object, raw_currency: object, where: str = ""
) -> tuple[int | None, str | None]:
    """Return (micros, currency) of a value and its currency: both or neither. Raises
    `InvalidInput` naming the field at fault (prefixed with `where`)."""
    micros = value_micros(raw_value, where + "value")
    currency = currency_code(raw_currency, where + "currency")
    if micros is not None and currency is None:
        raise InvalidInput(
            f"{where}currency: required with a value (ISO 4217, e.g. USD)", field=where + "currency"
        )
    if currency is not None and micros is None:
        raise InvalidInput(f"{where}value: required with a currency", field=where + "value")
    return micros, currency


def decimal_text(micros: int) -> str:
    """Return micros as the shortest decimal text of the amount (12500000 → ``12.5``)."""
    units, rest = divmod(micros, MICROS)
    return f"{units}.{rest:06d}".rstrip("0").rstrip(".") if rest else str(units)


def check_occurred(occurred_us: int, now_us: int, field: str = "occurred_at") -> int:
    """Return `occurred_us` if it is a plausible conversion time at `now_us`. Raises
    `InvalidInput` for a time in the future (beyond `MAX_SKEW_US`) or before 2000."""
    if occurred_us > now_us + MAX_SKEW_US:
        raise InvalidInput(
            f"{field}: in the future (more than {MAX_SKEW_US // (60 * MICROS)} minutes ahead of "
            "the server's clock)",
            field=field,
        )
    if occurred_us < EARLIEST_US:
        raise InvalidInput(f"{field}: before 2000-01-01 (seconds, not milliseconds?)", field=field)
    return occurred_us


def metadata(raw: object, field: str = "metadata") -> dict[str, Any] | None:
    """Return metadata as given if within bounds (None when missing or empty): a flat JSON
    object of at most `MAX_METADATA_KEYS` keys, text values at most `MAX_METADATA_TEXT`
    characters, numbers, booleans or null, and at most `MAX_METADATA_BYTES` in all. Raises
    `InvalidInput` naming the key at fault."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{field}: expected an object of flat values", field=field)
    if len(raw) > MAX_METADATA_KEYS:
        raise InvalidInput(f"{field}: at most {MAX_METADATA_KEYS} keys", field=field)
    size = 2
    for key, value in raw.items():
        if not isinstance(key, str) or not 0 < len(key) <= MAX_METADATA_KEY or "\x00" in key:
            at = f"{field}/{key}" if isinstance(key, str) and key else field
            raise InvalidInput(
                f"{at}: keys are 1-{MAX_METADATA_KEY} characters, without NUL", field=at
            )
        at = f"{field}/{key}"
        if isinstance(value, str):
            if len(value) > MAX_METADATA_TEXT or "\x00" in value:
                raise InvalidInput(
                    f"{at}: at most {MAX_METADATA_TEXT} characters, without NUL", field=at
                )
        elif value is not None and not isinstance(value, bool | int | float):
            raise InvalidInput(f"{at}: text, a number, true, false or null only", field=at)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**53:
            raise InvalidInput(f"{at}: integers within ±2^53 only", field=at)
        size += len(key.encode()) + len(str(value).encode()) + 6
    if size > MAX_METADATA_BYTES:
        raise InvalidInput(f"{field}: at most {MAX_METADATA_BYTES} bytes in all", field=field)
    return dict(raw) if raw else None


def dedup_key(
    event: str,
    txn: str | None,
    click_id: str | None,
    contact_id: int | None,
    mode: DuplicateMode,
    public_id: str,
) -> str:
    """Return the key a conversion is unique on within its workspace, forever.

    ``txn:<event>:<txn>`` with a transaction id; otherwise, in mode `count`,
    ``once:<public_id>`` (every conversion counts); else ``click:<event>:<click id>`` or
    ``contact:<event>:<contact>``. Event names hold no ``:``, so no two inputs share a key.
    """
    if txn is not None:
        return f"txn:{event}:{txn}"
    if mode == "count":
        return f"once:{public_id}"
    if click_id is not None:
        return f"click:{event}:{click_id}"
    return f"contact:{event}:{contact_id}"


# A click id as the redirect makes it (`web.redirect.new_click_id`): 16 URL-safe base64
# characters of 6 bytes of Unix milliseconds then 6 random bytes.
CLICK_ID = re.compile(r"[A-Za-z0-9_-]{16}")


def click_id_time_us(click_id: str) -> int | None:
    """Return when the click id says its click happened (µs), None for an id not of the
    redirect's form. Only a hint (anyone can write an id): used to decide whether a click may
    still be on its way from the redirect to the clicks table."""
    if not CLICK_ID.fullmatch(click_id):
        return None
    return int.from_bytes(urlsafe_b64decode(click_id)[:6], "big") * 1000
