"""Campaign holdouts: draw a campaign's holdout when its send starts, and tell the send whom
to skip (the draw itself: `domain.holdout`; the lift against it: `services.incrementality`).

The draw happens once, before the first message is wrapped: from the audience as it is then,
only contacts the send could reach (opted in, a valid number), so that both arms come from the
same population. It is stored with its seed, share and strata (`holdout_draws`) and the held-out
contacts (`campaign_holdouts`) in one transaction; a second draw of the same campaign (another
process, a rerun after a crash) keeps the first. Held-out contacts get no message, ever: the
send skips them and counts them apart.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.holdout import Draw, HoldoutSpec, Stratum, draw, stratum_attribute
from clicktrail.domain.models import Campaign


@dataclass(frozen=True, slots=True)
class AudienceMember:
    """One contact of a campaign's audience as the draw sees it."""

    contact_id: int
    phone: str
    opted_out: bool
    stratum: str
    valid_under: str | None = None  # the phone rules its number was last found valid under


@dataclass(frozen=True, slots=True)
class DrawRecord:
    """A campaign's stored draw: what was asked, how many were eligible and held out, per
    stratum, and when."""

    spec: HoldoutSpec
    eligible: int
    held: int
    strata: tuple[Stratum, ...]
    drawn_us: int


class HoldoutStore(Protocol):
    """Holdouts in storage (implemented by `storage.holdouts.HoldoutQueries`)."""

    def holdout_draw(self, campaign_id: int) -> DrawRecord | None:
        """Return the campaign's draw, None before its send started (or without a holdout)."""
        ...

    def audience_strata(
        self, workspace_id: int, list_id: int | None, stratify: str | None
    ) -> Iterable[AudienceMember]:
        """Return the campaign audience's contacts (of list `list_id`, else the workspace's)
        with their stratum under `stratify` (``""`` when None), opted-out ones included."""
        ...

    def save_draw(self, campaign_id: int, found: Draw, now_us: int) -> bool:
        """Store `found` as the campaign's draw with its held-out contacts, in one transaction;
        False (nothing written) when the campaign has a draw already."""
        ...

    def held_between(self, campaign_id: int, after_id: int, through_id: int) -> set[int]:
        """Return the campaign's held-out contacts with ids in (`after_id`, `through_id`]."""
        ...


def holdout_spec(
    share: float | None, seed: int | None = None, stratify: str | None = None
) -> HoldoutSpec | None:
    """Return the holdout a campaign is created with: None without a share (or a share of 0),
    else `share` with `seed` (a fresh random one, recorded, when None) and `stratify`.

    Raises `InvalidInput` naming the bad field."""
    if share is None or share == 0:
        if seed is not None or stratify:
            raise InvalidInput(
                "a holdout seed or stratification needs a holdout share", field="holdout_share"
            )
        return None
    spec = HoldoutSpec(
        float(share), secrets.randbits(63) if seed is None else seed, stratify or None
    )
    spec.check()
    return spec


def check_stratify(spec: HoldoutSpec | None, attribute_names: set[str]) -> None:
    """Raise `InvalidInput` when `spec` stratifies by an attribute no contact has."""
    if spec is None or spec.stratify is None:
        return
    name = stratum_attribute(spec.stratify)
    if name is not None and name not in attribute_names:
        known = ", ".join(sorted(attribute_names)) or "none yet"
        raise InvalidInput(
            f"holdout stratify: no contact has the attribute {name!r} (attributes: {known})",
            field="holdout_stratify",
        )


def assign_holdout(
    store: HoldoutStore,
    campaign: Campaign,
    *,
    is_valid_phone: Callable[[str], bool],
    phone_rules: str,
    now_us: int,
) -> DrawRecord | None:
    """Draw the campaign's holdout unless it has one already; return the draw (None: the
    campaign has no holdout). Only contacts a send could reach are eligible: opted in, with a
    valid number. As the send itself does (`sending.recipients.sendable`), a number recorded
    valid under `phone_rules` (the rules in force) is trusted; only the others are checked
    with `is_valid_phone` (the send records what it finds when it wraps them)."""
    spec = campaign.options.holdout
    if spec is None:
        return None
    found = store.holdout_draw(campaign.id)
    if found is not None:
        return found
    members = (
        (m.contact_id, m.stratum)
        for m in store.audience_strata(campaign.workspace_id, campaign.list_id, spec.stratify)
        if not m.opted_out and (m.valid_under == phone_rules or is_valid_phone(m.phone))
    )
    store.save_draw(campaign.id, draw(spec, members), now_us)
    record = store.holdout_draw(campaign.id)
    assert record is not None
    return record
