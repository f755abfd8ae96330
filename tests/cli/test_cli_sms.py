"""`clicktrail sms inspect`, through the root command (which maps errors to exit codes)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner, Result

from clicktrail.cli import app as root

runner = CliRunner()


def invoke(args: list[str], input: str | None = None) -> Result:
    return runner.invoke(root, ["sms", *args], input=input)


FILL = "Your order has shipped and will arrive tomorrow between 9 and 12 o'clock. "


def test_human_output() -> None:
    result = invoke(["inspect", "a" * 161])
    assert result.exit_code == 0, result.output
    assert "GSM-7" in result.output
    assert "segments  2" in result.output
    assert "part 2:" in result.output


def test_human_output_mentions_smart_encoding() -> None:
    result = invoke(["inspect", "Hi “Anna” " + FILL])
    assert result.exit_code == 0, result.output
    assert "UCS-2" in result.output
    assert "smart encoding would save: 1 segment(s), 2 change(s)" in result.output


def test_json_output() -> None:
    result = invoke(["inspect", "--json", "Hi “Anna” " + FILL])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["encoding"] == "UCS-2"
    assert data["segments"] == 2
    assert data["units"] == 10 + len(FILL) == 84
    assert data["units_left"] == 67 * 2 - 84
    assert "".join(data["parts"]) == "Hi “Anna” " + FILL
    smart = data["smart_encoding"]
    assert smart["applied"] is False
    assert (smart["encoding"], smart["segments"]) == ("GSM-7", 1)
    assert [c["from"] for c in smart["changes"]] == ["“", "”"]


def test_json_with_smart_encoding_applied() -> None:
    result = invoke(["inspect", "--json", "--smart-encoding", "Hi “Anna” " + FILL])
    data = json.loads(result.stdout)
    assert (data["encoding"], data["segments"]) == ("GSM-7", 1)
    assert data["text"] == 'Hi "Anna" ' + FILL
    assert data["smart_encoding"]["applied"] is True


def test_shift_table_option() -> None:
    result = invoke(["inspect", "--json", "--shift-table", "tr", "Teşekkürler è"])
    data = json.loads(result.stdout)
    assert data["encoding"] == "GSM-7"
    assert data["shift_table"] == {"locking": None, "single": "turkish"}


def test_unknown_shift_table_is_a_usage_error() -> None:
    result = invoke(["inspect", "--shift-table", "klingon", "x"])
    assert result.exit_code == 2
    assert "no national language shift table" in result.stderr
    assert result.stdout == ""


def test_stdin_text() -> None:
    result = invoke(["inspect", "--json", "-"], input="from stdin\n")
    assert json.loads(result.stdout)["parts"] == ["from stdin"]


def test_text_or_batch_required() -> None:
    result = invoke(["inspect"])
    assert result.exit_code == 2
    assert "give either TEXT or --batch FILE" in result.stderr
    assert invoke(["inspect", "x", "--batch", "-"], input="").exit_code == 2


def test_batch_from_file(tmp_path: Path) -> None:
    source = tmp_path / "texts.jsonl"
    lines = [json.dumps({"text": "a" * n}) for n in (1, 160, 161)]
    lines.insert(1, "")  # blank lines are skipped
    lines.append(json.dumps({"id": "m-4", "text": "ж"}))
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = invoke(["inspect", "--batch", str(source)])
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["segments"] for a in answers] == [1, 1, 2, 1]
    assert answers[3]["id"] == "m-4"
    assert answers[3]["encoding"] == "UCS-2"


def test_batch_many_texts_from_stdin() -> None:
    payload = "".join(json.dumps({"text": f"Message {i} ’"}) + "\n" for i in range(2000))
    result = invoke(["inspect", "--batch", "-", "--smart-encoding"], input=payload)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2000
    assert json.loads(lines[-1])["parts"] == ["Message 1999 ’"]  # not cheaper: unchanged


def test_batch_answers_a_bad_line_with_an_error_and_goes_on() -> None:
    payload = '{"text": "ok"}\n{"text": "ok too"}\n{"text": \n{"text": "after"}\n'
    result = invoke(["inspect", "--batch", "-"], input=payload)
    assert result.exit_code == 2
    assert "1 line(s) answered with an error object; the first: line 3: invalid JSON" in (
        result.stderr
    )
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a.get("parts") for a in answers] == [["ok"], ["ok too"], None, ["after"]]
    assert answers[2] == {
        "line": 3,
        "error": {"code": "invalid_input", "message": "line 3: invalid JSON: Expecting value"},
    }


def test_batch_counts_a_lone_surrogate_as_one_ucs2_unit() -> None:
    payload = '{"id": "cut", "text": "Hi \\ud83d"}\n{"text": "next"}\n'
    result = invoke(["inspect", "--batch", "-"], input=payload)
    assert result.exit_code == 0, result.output
    cut, after = (json.loads(line) for line in result.stdout.splitlines())
    assert (cut["id"], cut["encoding"], cut["units"], cut["parts"]) == (
        "cut", "UCS-2", 4, ["Hi \ud83d"],
    )  # fmt: skip
    assert '"Hi \\ud83d"' in result.stdout  # escaped: the output stays UTF-8
    assert after["parts"] == ["next"]


def test_batch_missing_text() -> None:
    result = invoke(["inspect", "--batch", "-"], input='{"body": "x"}\n')
    assert result.exit_code == 2
    assert 'line 1: missing "text"' in result.stderr
    result = invoke(["inspect", "--batch", "-"], input='["x"]\n')
    assert "line 1: expected a JSON object" in result.stderr
    result = invoke(["inspect", "--batch", "-"], input='{"text": 1}\n')
    assert 'line 1: "text" must be a string' in result.stderr
    result = invoke(["inspect", "--batch", "-"], input='{"text": null}\n')
    assert 'line 1: "text" must be a string' in result.stderr


def test_batch_unreadable_file(tmp_path: Path) -> None:
    result = invoke(["inspect", "--batch", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2
    assert "missing.jsonl" in result.stderr
