"""CTIA keyword parsing (pure domain code): the whole message must be the keyword; case,
surrounding whitespace and punctuation and full-width forms are tolerated, nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clicktrail.domain.optout import (
    HELP_KEYWORDS,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    KeywordAction,
    describe_source,
    parse_keyword,
)

OUT, IN, HELP = KeywordAction.OPT_OUT, KeywordAction.OPT_IN, KeywordAction.HELP


@pytest.mark.parametrize(
    ("text", "word", "action"),
    [
        ("STOP", "STOP", OUT), ("stop", "STOP", OUT), ("Stop", "STOP", OUT),
        ("  stop \n", "STOP", OUT), ("STOP.", "STOP", OUT), ("stop!!", "STOP", OUT),
        ("¡Stop!", "STOP", OUT), ('"STOP"', "STOP", OUT), ("*stop*", "STOP", OUT),
        ("\u200bSTOP\u200b", "STOP", OUT), ("ＳＴＯＰ", "STOP", OUT), ("stop\r\n", "STOP", OUT),
        ("STOPALL", "STOPALL", OUT), ("unsubscribe", "UNSUBSCRIBE", OUT),
        ("Cancel", "CANCEL", OUT), ("end.", "END", OUT), ("QUIT", "QUIT", OUT),
        ("START", "START", IN), ("start", "START", IN), ("Unstop!", "UNSTOP", IN),
        ("HELP", "HELP", HELP), ("help?", "HELP", HELP), (" Help ", "HELP", HELP),
    ],
)  # fmt: skip
def test_keywords_match(text: str, word: str, action: KeywordAction) -> None:
    found = parse_keyword(text)
    assert found is not None
    assert (found.word, found.action) == (word, action)


@pytest.mark.parametrize(
    "text",
    [
        "", "   ", "Please stop", "stop it", "STOP ALL", "STOP STOP", "S.T.O.P", "stopp",
        "sto p", "STOP 🛑", "🛑 STOP", "stop😀", "YES", "INFO", "OK", "STOPPED", "restart",
        "helpme", "stop" * 20, "end of message", "no", "Arrêt",
    ],
)  # fmt: skip
def test_other_messages_are_not_keywords(text: str) -> None:
    assert parse_keyword(text) is None


PADDING = st.text(alphabet=" \t\n.,!?¡¿;:'\"*()-…«»\u200b", max_size=6)
KEYWORDS = OPT_OUT_KEYWORDS + OPT_IN_KEYWORDS + HELP_KEYWORDS


@given(
    st.sampled_from(KEYWORDS),
    PADDING,
    PADDING,
    st.lists(st.booleans(), min_size=11, max_size=11),
)
def test_any_case_and_padding_still_match(
    word: str, before: str, after: str, upper: list[bool]
) -> None:
    cased = "".join(c.upper() if u else c.lower() for c, u in zip(word, upper, strict=False))
    found = parse_keyword(before + cased + after)
    assert found is not None and found.word == word


@given(st.sampled_from(KEYWORDS), PADDING, st.text(max_size=5))
def test_a_letter_joined_to_a_keyword_makes_it_no_keyword(
    word: str, padding: str, extra: str
) -> None:
    # "STOPq…" and "…qSTOP" are other words, whatever follows or precedes them.
    assert parse_keyword(word + "q" + padding + extra) is None
    assert parse_keyword(padding + "q" + word) is None


def test_source_names_the_keyword_and_the_channel() -> None:
    found = parse_keyword("stop")
    assert found is not None
    assert describe_source(found, "twilio inbound") == "keyword:STOP via twilio inbound"
