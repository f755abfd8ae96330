"""Any JSON string, lone UTF-16 surrogates included ("\\ud83d": valid JSON, what a truncated
emoji looks like), through the SMS text engine and `clicktrail sms inspect` (single and
--batch): counted, never a crash; a batch answers every line and goes on past bad ones."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from clicktrail.cli import app as root
from clicktrail.domain.sms import LoneSurrogateError, analyze, check_characters, smart_encode

# Every code point, surrogates included (hypothesis leaves category Cs out by default).
ANY_CHAR = st.characters(exclude_categories=())
ANY_TEXT = st.text(ANY_CHAR, max_size=200) | st.sampled_from(["\ud83d", "a\udc00b", "😀\ud83d"])
runner = CliRunner()


def ucs2_units(text: str) -> int:
    """UTF-16 code units: what a UCS-2 message spends (a lone surrogate is one)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@given(ANY_TEXT)
def test_any_string_is_counted(text: str) -> None:
    info = analyze(text)
    if info.encoding == "UCS-2":
        assert info.units == ucs2_units(text)
    assert "".join(info.parts) == text
    smart = smart_encode(text)
    assert smart.after.segments <= smart.before.segments


def test_a_lone_surrogate_is_one_ucs2_unit() -> None:
    info = analyze("Hi \ud83d")
    assert (info.encoding, info.units, info.segments) == ("UCS-2", 4, 1)


def test_a_lone_surrogate_cannot_be_stored() -> None:
    with pytest.raises(LoneSurrogateError) as bad:
        check_characters("ok \ud83d", "template")
    assert (bad.value.field, bad.value.position, bad.value.code_point) == ("template", 3, 0xD83D)
    assert "U+D83D at character 3" in bad.value.message
    assert check_characters("ok 😀", "template") == "ok 😀"


@settings(max_examples=50, deadline=None)
@given(ANY_TEXT)
def test_inspect_answers_any_string(text: str) -> None:
    if text == "-":  # (that one means stdin)
        return
    result = runner.invoke(root, ["sms", "inspect", "--json", "--", text])
    assert result.exit_code == 0, result.output
    assert "".join(json.loads(result.stdout)["parts"]) == text
    human = runner.invoke(root, ["sms", "inspect", "--", text])
    assert human.exit_code == 0, human.output


def test_stdin_that_is_not_utf8_is_an_input_error() -> None:
    result = runner.invoke(root, ["sms", "inspect", "-"], input=b"Hi \xed\xa0\xbd")
    assert result.exit_code == 2
    assert "stdin is not UTF-8 (byte 4)" in result.stderr


JUNK = st.sampled_from(['{"text": ', "[1]", '{"body": "x"}', '{"id": 7, "text": 1}', "\udcff"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), ANY_TEXT, JUNK), min_size=1, max_size=12))
def test_a_batch_answers_every_line_and_goes_on(lines: list[tuple[bool, str, str]]) -> None:
    source, expected = [], []
    for good, text, junk in lines:
        if good:
            source.append(json.dumps({"text": text}))  # ASCII: surrogates as \ud83d escapes
            expected.append(text)
        else:
            source.append(junk)
            expected.append(None)
    data = "\n".join(source).encode("utf-8", "surrogateescape") + b"\n"
    result = runner.invoke(root, ["sms", "inspect", "--batch", "-"], input=data)
    # (split on "\n" only: answers keep U+2028 and other line separators as they are)
    answers = [json.loads(line) for line in result.stdout.split("\n")[:-1]]
    assert len(answers) == len(expected)
    for number, (answer, text) in enumerate(zip(answers, expected, strict=True), start=1):
        if text is None:
            assert answer["line"] == number
            assert answer["error"]["message"].startswith(f"line {number}: ")
        else:
            assert "".join(answer["parts"]) == text  # surrogates come back escaped, exactly
    assert result.exit_code == (2 if None in expected else 0)
    if None in expected:
        assert f"the first: line {expected.index(None) + 1}: " in result.stderr
