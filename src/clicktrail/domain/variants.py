"""A/B variants of a campaign: their names, texts and split shares, and which recipient gets
which (docs/experiments.md).

**The draw.** The recipients of a send, in the order they are wrapped (contact id), are split
by the shares with Hamilton's largest-remainder method (`domain.bandit.apportion`: 1,000
recipients at 70/30 are exactly 700 and 300, 7 at 1/1 are 4 and 3), then the list of labels is
shuffled by `random.Random(seed)`. The same seed and the same recipients always give the same
assignment, and the shares hold exactly for small audiences too.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clicktrail.domain.bandit import apportion
from clicktrail.domain.errors import InvalidInput

MIN_VARIANTS = 2
MAX_VARIANTS = 10
MAX_SHARE = 1000  # integer weights: 70/30, 1/1/1, 999/1
MAX_SEED = 2**63 - 1
VARIANT_MACRO = "variant"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


@dataclass(frozen=True, slots=True)
class Variant:
    """One variant: its `name` (``a``, ``short-text``), its template and its share (weight)."""

    name: str
    template: str
    share: int


@dataclass(frozen=True, slots=True)
class VariantSpec:
    """A campaign's variants, in order (the first is the control the others are compared
    with), and the seed of the draw."""

    variants: tuple[Variant, ...]
    seed: int

    def check(self) -> None:
        """Raise `InvalidInput` naming the first bad field (``variants``, ``variants/2/name``,
        ``variants/2/share``, ``variants/2/template``, ``variant_seed``)."""
        n = len(self.variants)
        if not MIN_VARIANTS <= n <= MAX_VARIANTS:
            raise InvalidInput(
                f"variants: give {MIN_VARIANTS} to {MAX_VARIANTS} variants, got {n}",
                field="variants",
            )
        seen: set[str] = set()
        for i, v in enumerate(self.variants):
            if not isinstance(v.name, str) or not _NAME.fullmatch(v.name):
                raise InvalidInput(
                    f"variant {i + 1}: name {v.name!r} must be 1-32 lowercase letters, digits, "
                    "'-' or '_', starting with a letter or digit",
                    field=f"variants/{i}/name",
                )
            if v.name in seen:
                raise InvalidInput(
                    f"variant {i + 1}: name {v.name!r} is used twice", field=f"variants/{i}/name"
                )
            seen.add(v.name)
            if isinstance(v.share, bool) or not isinstance(v.share, int):
                raise InvalidInput(
                    f"variant {v.name}: share must be a whole number", field=f"variants/{i}/share"
                )
            if not 1 <= v.share <= MAX_SHARE:
                raise InvalidInput(
                    f"variant {v.name}: share must be from 1 to {MAX_SHARE}, got {v.share}",
                    field=f"variants/{i}/share",
                )
            if not v.template.strip():
                raise InvalidInput(
                    f"variant {v.name}: template is empty", field=f"variants/{i}/template"
                )
        if not 0 <= self.seed <= MAX_SEED:
            raise InvalidInput(
                f"variant seed must be a whole number from 0 to 2^63-1, got {self.seed}",
                field="variant_seed",
            )

    @property
    def shares(self) -> list[int]:
        """The shares, in the variants' order."""
        return [v.share for v in self.variants]

    def named(self, name: str) -> Variant | None:
        """Return the variant called `name`, or None."""
        return next((v for v in self.variants if v.name == name), None)

    def as_dict(self) -> dict[str, object]:
        """Return the spec as stored in the campaign's options."""
        return {
            "seed": self.seed,
            "variants": [
                {"name": v.name, "template": v.template, "share": v.share} for v in self.variants
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object] | None) -> VariantSpec | None:
        """Return the stored spec (None: the campaign has no variants)."""
        if not data:
            return None
        seed, items = data.get("seed"), data.get("variants")
        assert isinstance(seed, int)
        assert isinstance(items, list)
        return cls(
            tuple(Variant(str(v["name"]), str(v["template"]), int(v["share"])) for v in items),
            seed,
        )


def assign(count: int, shares: Sequence[int], seed: int) -> list[int]:
    """Return the variant index of each of `count` recipients, in their order: the counts of
    `apportion` (exact shares), shuffled by `random.Random(seed)`."""
    labels = [i for i, n in enumerate(apportion(count, list(shares))) for _ in range(n)]
    random.Random(seed).shuffle(labels)
    return labels
