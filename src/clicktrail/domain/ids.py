"""Opaque public ids (``cmp_…``, ``msg_…``): random, so they reveal no count or order."""

from __future__ import annotations

import os
from collections.abc import Callable

from clicktrail.domain.tokens import ALPHABET


def new_public_id(
    prefix: str, length: int = 16, random_bytes: Callable[[int], bytes] = os.urandom
) -> str:
    """Return ``prefix_`` followed by `length` random base62 characters."""
    n = int.from_bytes(random_bytes(length), "big")
    chars = []
    for _ in range(length):
        n, r = divmod(n, 62)
        chars.append(ALPHABET[r])
    return f"{prefix}_{''.join(chars)}"
