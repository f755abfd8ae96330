"""Slugs: the short names users type for workspaces and campaigns."""

from __future__ import annotations

import re
import unicodedata

from clicktrail.domain.errors import InvalidInput

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}\Z")


def slugify(name: str) -> str:
    """Return a slug for `name`: lowercase ASCII letters, digits and dashes.

    Raises `InvalidInput` when nothing usable is left (e.g. a name of only symbols).
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:63].rstrip("-")
    if not slug:
        raise InvalidInput(
            f"name {name!r} has no letters or digits to make a slug from", field="name"
        )
    return slug


def check_slug(slug: str, what: str) -> str:
    """Return `slug` if valid, else raise `InvalidInput` saying what a slug may contain."""
    if not _SLUG.match(slug):
        raise InvalidInput(
            f"{what} {slug!r} is not a valid slug: use 1-63 lowercase letters, digits and dashes, "
            "starting with a letter or digit",
            field="slug",
        )
    return slug
