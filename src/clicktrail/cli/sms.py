"""`clicktrail sms …`: inspect what a text costs as SMS (encoding, segments, parts).

Thin: parses input, calls the SMS text engine (`clicktrail.domain.sms`), formats the result.
Errors are `InvalidInput` from the one error tree; the root command maps them to a message on
stderr and exit status 2.

`inspect -` reads the text from stdin, minus the one line break that ends the input.
`inspect --batch FILE` reads JSON lines `{"text": "…"}` (FILE or `-` for stdin; an `"id"` is
echoed back) and writes one JSON line per input line, in order; blank lines are skipped. A batch
never stops at a bad line: a line that is not valid UTF-8 or JSON, not an object, or whose
`"text"` is missing or not a string is answered with `{"line": N, "error": {"code":
"invalid_input", "message": "line N: <reason>"}}` (with its `"id"` when it has one), and the
batch goes on; the exit status is then 2 and stderr says how many lines had errors. Each answer
is written in one piece. A lone UTF-16 surrogate (`"\\ud83d"`, valid JSON: a truncated emoji)
is counted as one UCS-2 unit, as the reference calculators do, and written back escaped, so
every output line is valid UTF-8 and JSON.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.sms import SmartEncoding, SmsInfo, smart_encode

app = typer.Typer(help="Inspect SMS encoding and segments.", no_args_is_help=True)


@app.callback()
def _sms() -> None:
    """Inspect SMS encoding and segments."""


@app.command("inspect")
def inspect(
    text: Annotated[
        str | None, typer.Argument(help="The text, or - to read it from stdin.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    smart_encoding: Annotated[
        bool,
        typer.Option(
            "--smart-encoding", help="Apply smart encoding (look-alike substitution) first."
        ),
    ] = False,
    shift_table: Annotated[
        str | None,
        typer.Option(
            "--shift-table",
            metavar="LANG",
            help="Allow a national language shift table: a name or code such as turkish/tr, spanish/es, portuguese/pt, hindi/hi, tamil/ta, urdu/ur (all 13 of 3GPP TS 23.038).",
        ),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch",
            metavar="FILE",
            help='Read JSON lines {"text": ...} from FILE (or - for stdin); write JSON lines.',
        ),
    ] = None,
) -> None:
    """Print the encoding, segments, units and parts of TEXT, and what smart encoding would
    change."""
    if (text is None) == (batch is None):
        raise InvalidInput("give either TEXT or --batch FILE", field="text")
    if batch is not None:
        _run_batch(batch, smart=smart_encoding, shift_table=shift_table)
        return
    assert text is not None
    if text == "-":
        # The newline that ends the input (`echo … |`) is not part of the message.
        raw = sys.stdin.buffer.read()
        try:
            text = raw.decode("utf-8").removesuffix("\n").removesuffix("\r")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"stdin is not UTF-8 (byte {exc.start + 1})", field="text") from None
    result = smart_encode(text, shift_table=shift_table)
    if as_json:
        typer.echo(_dumps(_result_dict(result, applied=smart_encoding)))
    else:
        _print_human(result, applied=smart_encoding)


def _run_batch(source: str, *, smart: bool, shift_table: str | None) -> None:
    """Answer every JSON line of `source`, bad ones with an error object (module docstring).

    Raises `InvalidInput` for an unreadable source, and at the end when some line was bad.
    """
    stream: BinaryIO
    if source == "-":
        stream = sys.stdin.buffer
    else:
        try:
            stream = Path(source).open("rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise InvalidInput(f"{source}: {exc.strerror}", field="batch") from None
    out = sys.stdout
    bad: list[dict[str, Any]] = []
    try:
        for number, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            try:
                answer = _answer(raw, number, smart=smart, shift_table=shift_table)
            except _BadLine as exc:
                bad.append(exc.answer)
                answer = exc.answer
            # One write per line: a line is either complete on stdout or absent.
            out.write(_dumps(answer) + "\n")
        out.flush()
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    if bad:
        raise InvalidInput(
            f"{len(bad)} line(s) answered with an error object; the first: "
            f"{bad[0]['error']['message']}",
            field=f"line {bad[0]['line']}",
        )


class _BadLine(Exception):
    """A batch line that cannot be inspected; `answer` is its error object."""

    def __init__(self, number: int, reason: str, record: Any = None) -> None:
        super().__init__(reason)
        error = {"code": "invalid_input", "message": f"line {number}: {reason}"}
        self.answer: dict[str, Any] = {"line": number, "error": error}
        if isinstance(record, dict) and "id" in record:
            self.answer = {"id": record["id"], **self.answer}


def _answer(raw: bytes, number: int, *, smart: bool, shift_table: str | None) -> dict[str, Any]:
    """Return the inspection of one batch line. Raises `_BadLine` when it has none."""
    try:
        line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        raise _BadLine(number, f"not UTF-8 (byte {exc.start + 1})") from None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _BadLine(number, f"invalid JSON: {exc.msg}") from None
    if not isinstance(record, dict):
        raise _BadLine(number, "expected a JSON object")
    value = record.get("text")
    if not isinstance(value, str):
        reason = '"text" must be a string' if "text" in record else 'missing "text"'
        raise _BadLine(number, reason, record)
    answer = _result_dict(smart_encode(value, shift_table=shift_table), applied=smart)
    return {"id": record["id"], **answer} if "id" in record else answer


def _result_dict(result: SmartEncoding, *, applied: bool) -> dict[str, Any]:
    """Return the JSON shape of an inspection: the analysis of the text as it will be sent
    (smart-encoded when `applied`), plus what smart encoding changes / would change."""
    info = result.after if applied else result.before
    payload = _info_dict(info)
    payload["smart_encoding"] = {
        "applied": applied and result.applied,
        "changes": [
            {
                "start": c.start,
                "end": c.end,
                "from": c.original,
                "to": c.replacement,
                "reason": c.reason,
            }
            for c in result.changes
        ],
        "encoding": result.after.encoding,
        "segments": result.after.segments,
        "units": result.after.units,
        "unencodable": list(result.unencodable),
    }
    if applied:
        payload["text"] = result.text
    return payload


def _info_dict(info: SmsInfo) -> dict[str, Any]:
    return {
        "encoding": info.encoding,
        "segments": info.segments,
        "units": info.units,
        "units_left": info.units_left,
        "limit": info.limit,
        "shift_table": {"locking": info.locking_shift, "single": info.single_shift},
        "parts": list(info.parts),
    }


def _print_human(result: SmartEncoding, *, applied: bool) -> None:
    info = result.after if applied else result.before
    console = Console(highlight=False, soft_wrap=True)
    table = Table(show_header=False, box=None)
    table.add_row("encoding", info.encoding)
    table.add_row("segments", str(info.segments))
    table.add_row("units", f"{info.units} ({info.units_left} left of {info.limit} in the last)")
    if info.locking_shift or info.single_shift:
        table.add_row("shift tables", f"locking: {info.locking_shift}, single: {info.single_shift}")
    console.print(table)
    for number, part in enumerate(info.parts, start=1):
        console.print(
            f"part {number}: {escape(_escape_surrogates(json.dumps(part, ensure_ascii=False)))}"
        )
    if result.applied:
        verb = "applied" if applied else "would save"
        saved = result.before.segments - result.after.segments
        console.print(f"smart encoding {verb}: {saved} segment(s), {len(result.changes)} change(s)")
        for c in result.changes:
            console.print(f"  {c.start}:{c.end} {escape(_escape_surrogates(c.reason))}")
    elif result.unencodable:
        chars = _escape_surrogates(
            " ".join(json.dumps(ch, ensure_ascii=False) for ch in result.unencodable)
        )
        console.print(f"UCS-2 because of: {escape(chars)}")


_SURROGATE = re.compile("[\ud800-\udfff]")


def _dumps(payload: dict[str, Any]) -> str:
    """JSON with non-ASCII characters as they are, except lone surrogates, which only an
    escape can carry (they cannot be written as UTF-8)."""
    return _escape_surrogates(json.dumps(payload, ensure_ascii=False))


def _escape_surrogates(text: str) -> str:
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
