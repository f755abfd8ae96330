"""Campaign holdouts: which contacts of a campaign's audience get nothing, and when a lift
measured against them is too small a sample to mean anything (docs/attribution.md, "Holdout
and lift").

**The draw.** Each eligible contact gets a rank, the first 8 bytes of
``BLAKE2b(key=seed, data=contact id)``; within each stratum the contacts with the lowest ranks
are held out. The rank depends only on the seed and the contact, never on the order the
audience is read in or on Python's `random`, so the same seed and audience always give the
same holdout (and one contact more or less moves at most one other).

**How many per stratum.** The holdout is ``round(share × N)`` contacts in all; each stratum of
``n`` contacts gets ``floor(share × n)``, and the contacts still owed go one each to the strata
with the largest fractional remainders (Hamilton's largest-remainder method; ties go to the
stratum whose name hashes lowest under the seed). So every stratum is held out at the share to
within one contact, and the total is exact.

**Strata.** ``list``: the contact lists a contact is on (their sorted names: a contact on
several lists is its own stratum); ``attribute:NAME``: the value of one contact attribute (a
missing value is a stratum of its own). Segments will be a third kind once they exist.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from clicktrail.domain.errors import InvalidInput

MAX_SHARE = 0.5  # past half the audience the campaign is the control, not the treatment
DAY_US = 86_400_000_000
# The lift window until a campaign has an attribution window of its own: conversions of both
# arms up to 5 days after the send count (the click window's default, issue 16).
DEFAULT_WINDOW_US = 5 * DAY_US
# Too small (see `too_small`): the normal approximations behind the interval and the p-value
# want at least this many converting and this many non-converting contacts in each arm.
MIN_EVENTS = 10
STRATIFY_LIST = "list"
ATTRIBUTE_PREFIX = "attribute:"
MISSING = ""  # the stratum of contacts without the attribute (or on no list)


@dataclass(frozen=True, slots=True)
class HoldoutSpec:
    """A campaign's holdout as asked for: `share` of the eligible audience (0 < share ≤ 0.5),
    the `seed` of the draw, and how to stratify it (None, ``list`` or ``attribute:NAME``)."""

    share: float
    seed: int
    stratify: str | None = None

    def check(self) -> None:
        """Raise `InvalidInput` naming the first bad field."""
        if not (isinstance(self.share, float | int) and 0 < self.share <= MAX_SHARE):
            raise InvalidInput(
                f"holdout share must be more than 0 and at most {MAX_SHARE} (50 %), "
                f"got {self.share!r}",
                field="holdout_share",
            )
        if not 0 <= self.seed < 2**63:
            raise InvalidInput(
                f"holdout seed must be a whole number from 0 to 2^63-1, got {self.seed}",
                field="holdout_seed",
            )
        if self.stratify is not None:
            stratum_attribute(self.stratify)

    def as_dict(self) -> dict[str, object]:
        """Return the spec as stored in the campaign's options."""
        return {"share": self.share, "seed": self.seed, "stratify": self.stratify}

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | None) -> HoldoutSpec | None:
        """Return the stored spec (None: the campaign has no holdout)."""
        if not data:
            return None
        share, seed, stratify = data.get("share"), data.get("seed"), data.get("stratify")
        assert isinstance(share, float | int)
        assert isinstance(seed, int)
        return cls(float(share), seed, stratify if isinstance(stratify, str) else None)


def stratum_attribute(stratify: str) -> str | None:
    """Return the attribute name of an ``attribute:NAME`` stratification, None for ``list``.

    Raises `InvalidInput` for anything else."""
    if stratify == STRATIFY_LIST:
        return None
    if stratify.startswith(ATTRIBUTE_PREFIX) and stratify[len(ATTRIBUTE_PREFIX) :].strip():
        return stratify[len(ATTRIBUTE_PREFIX) :].strip()
    raise InvalidInput(
        f"holdout stratify must be 'list' or 'attribute:NAME', got {stratify!r} "
        "(by segment once segments exist)",
        field="holdout_stratify",
    )


@dataclass(frozen=True, slots=True)
class Stratum:
    """One stratum of a draw: its eligible contacts and how many were held out."""

    name: str
    eligible: int
    held: int


@dataclass(frozen=True, slots=True)
class Draw:
    """The outcome of a draw: the held-out contacts (contact id → stratum) and the strata."""

    held: dict[int, str]
    strata: tuple[Stratum, ...]
    eligible: int = 0
    spec: HoldoutSpec | None = field(default=None, compare=False)


def rank(seed: int, contact_id: int) -> bytes:
    """Return contact `contact_id`'s place in the draw of `seed` (lower is held out first)."""
    key = seed.to_bytes(8, "big")
    return hashlib.blake2b(
        contact_id.to_bytes(8, "big", signed=True), key=key, digest_size=8
    ).digest()


def _name_rank(seed: int, name: str) -> bytes:
    return hashlib.blake2b(name.encode(), key=seed.to_bytes(8, "big"), digest_size=8).digest()


def allocate(sizes: Mapping[str, int], share: float, seed: int) -> dict[str, int]:
    """Return how many contacts each stratum holds out: ``floor(share × n)`` each, then one
    more for the strata with the largest remainders until ``round(share × total)``."""
    total = sum(sizes.values())
    target = math.floor(share * total + 0.5)
    quotas = {name: share * n for name, n in sizes.items()}
    out = {name: math.floor(q) for name, q in quotas.items()}
    owed = target - sum(out.values())
    by_remainder = sorted(
        (n for n in sizes if out[n] < sizes[n]),
        key=lambda n: (-(quotas[n] - out[n]), _name_rank(seed, n)),
    )
    for name in by_remainder[: max(owed, 0)]:
        out[name] += 1
    return out


def draw(spec: HoldoutSpec, members: Iterable[tuple[int, str]]) -> Draw:
    """Draw the holdout of `spec` from the eligible audience `members` (contact id, stratum
    name; one stratum ``""`` when unstratified). Deterministic: the same spec and members, in
    any order, give the same draw."""
    by_stratum: dict[str, list[int]] = {}
    for contact_id, stratum in members:
        by_stratum.setdefault(stratum, []).append(contact_id)
    counts = allocate({k: len(v) for k, v in by_stratum.items()}, spec.share, spec.seed)
    held: dict[int, str] = {}
    strata = []
    for name in sorted(by_stratum):
        ids = sorted(by_stratum[name], key=lambda cid: rank(spec.seed, cid))
        for cid in ids[: counts[name]]:
            held[cid] = name
        strata.append(Stratum(name, len(ids), counts[name]))
    eligible = sum(len(v) for v in by_stratum.values())
    return Draw(held, tuple(strata), eligible, spec)


def too_small(treated: int, treated_conv: int, holdout: int, holdout_conv: int) -> str | None:
    """Return why a lift over these arms (contacts, converting contacts) is too small a sample
    to trust, or None when it is not.

    The rule: each arm needs at least `MIN_EVENTS` converting and `MIN_EVENTS` non-converting
    contacts (the usual condition for the normal approximations behind the intervals and the
    p-value to hold)."""
    reasons = []
    for arm, n, x in (("treated", treated, treated_conv), ("holdout", holdout, holdout_conv)):
        if n == 0:
            reasons.append(f"the {arm} arm has no contacts")
        elif x < MIN_EVENTS:
            reasons.append(f"the {arm} arm has {x} converting contact(s) (fewer than {MIN_EVENTS})")
        elif n - x < MIN_EVENTS:
            reasons.append(
                f"the {arm} arm has {n - x} non-converting contact(s) (fewer than {MIN_EVENTS})"
            )
    return "; ".join(reasons) or None
