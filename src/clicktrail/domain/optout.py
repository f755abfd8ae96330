"""Opt-out keywords (CTIA): what an inbound SMS asks for.

Carriers, aggregators and Twilio act on a keyword only when it is the *whole* message: ``STOP``
opts out, ``Please stop texting me`` does not (a person reads that one). clicktrail matches the
same way, after removing what phones and people add around a word:

* Unicode compatibility forms are folded (NFKC): full-width ``ＳＴＯＰ`` is ``STOP``;
* whitespace, control and format characters (line breaks, zero-width spaces) and punctuation
  (Unicode categories Z*, Cc, Cf, P*: ``.``, ``!``, ``¡``, quotes, ``*``…) are stripped from
  both ends — never from inside, so ``S.T.O.P`` and ``STOP ALL`` are not keywords;
* case is ignored (``stop``, ``Stop``).

Symbols and emoji are not stripped (``STOP 🛑`` is not a keyword), which is what carriers do.

| keyword | action |
|---|---|
| STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT | opt out |
| START, UNSTOP | opt back in |
| HELP | help (the workspace's reply, when it has one) |

Twilio also takes YES as opt-in and INFO as help; they are left out here on purpose: "yes" is
a common answer to a question and must not re-subscribe anyone by accident.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class KeywordAction(StrEnum):
    """What a keyword asks for."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


OPT_OUT_KEYWORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
OPT_IN_KEYWORDS = ("START", "UNSTOP")
HELP_KEYWORDS = ("HELP",)

_ACTIONS: dict[str, KeywordAction] = {
    **{k.casefold(): KeywordAction.OPT_OUT for k in OPT_OUT_KEYWORDS},
    **{k.casefold(): KeywordAction.OPT_IN for k in OPT_IN_KEYWORDS},
    **{k.casefold(): KeywordAction.HELP for k in HELP_KEYWORDS},
}
# A message longer than this cannot be a keyword with some punctuation around it; checking
# the length first keeps a long body from being normalized for nothing.
_MAX_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Keyword:
    """A keyword found in an inbound message: the word (upper case) and what it asks for."""

    word: str
    action: KeywordAction


def _is_padding(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] in "ZP" or cat in ("Cc", "Cf") or ch.isspace()


def parse_keyword(text: str) -> Keyword | None:
    """Return the keyword `text` is, or None when it is not one (see the module docstring)."""
    if len(text) > _MAX_LENGTH:
        return None
    folded = unicodedata.normalize("NFKC", text)
    start, end = 0, len(folded)
    while start < end and _is_padding(folded[start]):
        start += 1
    while end > start and _is_padding(folded[end - 1]):
        end -= 1
    word = folded[start:end].casefold()
    action = _ACTIONS.get(word)
    return None if action is None else Keyword(word.upper(), action)


def describe_source(keyword: Keyword, channel: str) -> str:
    """Return how an opt-out history entry names its cause: ``keyword:STOP via twilio inbound``."""
    return f"keyword:{keyword.word} via {channel}"
