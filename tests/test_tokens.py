"""Redirect tokens: format, check character, uniqueness, injectable randomness."""

from __future__ import annotations

import os
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from clicktrail.domain.tokens import ALPHABET, TOKEN_LENGTH, is_well_formed, new_token

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
tokens = st.binary(min_size=8, max_size=8).map(lambda b: new_token(lambda n: b[:n]))


def test_alphabet_is_base62() -> None:
    assert ALPHABET == BASE62
    assert TOKEN_LENGTH == 9


@given(tokens)
def test_new_token_is_nine_base62_characters_and_well_formed(token: str) -> None:
    assert len(token) == 9
    assert set(token) <= set(BASE62)
    assert is_well_formed(token)


@given(tokens, st.integers(min_value=0, max_value=8), st.integers(min_value=1, max_value=61))
@example(token="000000000", pos=1, delta=31)
def test_every_single_character_substitution_is_rejected(token: str, pos: int, delta: int) -> None:
    ch = BASE62[(BASE62.index(token[pos]) + delta) % 62]
    mutated = token[:pos] + ch + token[pos + 1 :]
    assert not is_well_formed(mutated)


def test_every_substitution_of_one_token_is_rejected_exhaustively() -> None:
    token = new_token(lambda n: b"\x00" * n)
    accepted = [
        (pos, ch)
        for pos in range(9)
        for ch in BASE62
        if ch != token[pos] and is_well_formed(token[:pos] + ch + token[pos + 1 :])
    ]
    assert accepted == []


@given(tokens, st.integers(min_value=1, max_value=61))
def test_any_change_of_the_check_character_is_rejected(token: str, delta: int) -> None:
    ch = BASE62[(BASE62.index(token[-1]) + delta) % 62]
    assert not is_well_formed(token[:-1] + ch)


@given(tokens, st.integers(min_value=0, max_value=7), st.integers(min_value=1, max_value=30))
def test_substitutions_other_than_by_31_places_are_rejected(
    token: str, pos: int, delta: int
) -> None:
    for d in (delta, 62 - delta):
        ch = BASE62[(BASE62.index(token[pos]) + d) % 62]
        assert not is_well_formed(token[:pos] + ch + token[pos + 1 :])


@given(tokens, st.text(min_size=1, max_size=3, alphabet=BASE62))
def test_wrong_lengths_are_rejected(token: str, extra: str) -> None:
    assert not is_well_formed(token + extra)
    assert not is_well_formed(token[: -len(extra)])


@pytest.mark.parametrize("bad", ["-", "_", " ", "é", ".", "/", "\x00", "Ａ", "٣"])
def test_characters_outside_the_alphabet_are_rejected(bad: str) -> None:
    token = new_token()
    for pos in range(9):
        assert not is_well_formed(token[:pos] + bad + token[pos + 1 :])


def test_empty_and_punctuated_strings_are_rejected_without_error() -> None:
    assert not is_well_formed("")
    assert not is_well_formed("AAAAAAAA-")
    assert not is_well_formed("AAAA-AAAA")


def test_a_hundred_thousand_tokens_are_distinct() -> None:
    drawn = {new_token() for _ in range(100_000)}
    assert len(drawn) == 100_000


def test_injected_random_bytes_give_a_deterministic_token() -> None:
    calls: list[int] = []

    def fixed(n: int) -> bytes:
        calls.append(n)
        return bytes(range(1, n + 1))

    first = new_token(fixed)
    assert first == new_token(fixed)
    assert calls == [8, 8]
    assert is_well_formed(first)
    # 0x0102030405060708 mod 62**8, digits least significant first.
    n = int.from_bytes(bytes(range(1, 9)), "big") % 62**8
    body = ""
    for _ in range(8):
        n, r = divmod(n, 62)
        body += BASE62[r]
    assert first[:8] == body
    assert new_token(lambda n: b"\x00" * n) == "0" * 9


def test_zero_bytes_and_different_bytes_differ() -> None:
    assert new_token(lambda n: b"\x00" * n) != new_token(lambda n: b"\x00" * (n - 1) + b"\x01")
    assert new_token(os.urandom) != new_token(os.urandom)
