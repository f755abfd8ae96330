"""Redirect tokens: short, unguessable, carrying no readable id.

Scheme (see docs/concepts.md#tokens):

* A token is ``RANDOM_LENGTH`` (8) characters drawn uniformly from ``[0-9A-Za-z]`` by a
  cryptographic random source, followed by one check character: 9 characters in all.
* The 8 random characters give 62**8 ≈ 2.18e14 values. With N live tokens, a random guess that
  passes the cheap checks hits one with probability N / 62**8: 4.6e-7 for N = 1e8, below the
  one-in-a-million bar. Storage enforces uniqueness; a collision on creation is retried.
* The check character is a weighted sum mod 62 of the others. It is not a secret: it lets the
  redirect reject 61 of 62 scanned tokens, and every single-character typo, before any lookup,
  at the cost of one character.
"""

from __future__ import annotations

import os
from collections.abc import Callable

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 8
TOKEN_LENGTH = RANDOM_LENGTH + 1
_SPACE = len(ALPHABET) ** RANDOM_LENGTH
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
_VALID = frozenset(ALPHABET)


# Odd weights below 31 share no factor with 62 = 2 x 31, so changing any one character always
# changes the sum mod 62 (a weight with a common factor would miss the substitution by the
# character 31 places away). Adjacent transpositions are caught unless the two characters are
# exactly 31 apart.
_WEIGHTS = (1, 3, 5, 7, 9, 11, 13, 15)


def _check_char(body: str) -> str:
    total = 0
    for weight, ch in zip(_WEIGHTS, body, strict=True):
        total += weight * _INDEX[ch]
    return ALPHABET[total % 62]


def new_token(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """Return a fresh token (8 random base62 characters + 1 check character).

    64 random bits reduced mod 62**8 (≈ 2**47.6): the modulo bias is below 1e-5 and harmless.
    """
    n = int.from_bytes(random_bytes(8), "big") % _SPACE
    chars = []
    for _ in range(RANDOM_LENGTH):
        n, r = divmod(n, 62)
        chars.append(ALPHABET[r])
    body = "".join(chars)
    return body + _check_char(body)


def is_well_formed(token: str) -> bool:
    """Return True if `token` has the right length, alphabet and check character.

    This is the cheap filter the redirect applies before any lookup.
    """
    if len(token) != TOKEN_LENGTH or not _VALID.issuperset(token):
        return False
    return token[-1] == _check_char(token[:-1])
