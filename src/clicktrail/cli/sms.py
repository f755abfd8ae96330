"""`clicktrail sms …`: inspect what a text costs as SMS (encoding, segments, parts).

Thin: parses input, calls the SMS text engine (`clicktrail.domain.sms`), formats the result.
Errors are `InvalidInput` from the one error tree; the root command maps them to a message on
stderr and exit status 2.

`inspect -` reads the text from stdin, minus the one line break that ends the input.
`inspect --batch FILE` reads JSON lines `{"text": "…"}` (FILE or `-` for stdin; an `"id"` is
echoed back) and writes one JSON result per input line, in order; blank lines are skipped. It
fails fast: at the first bad line (invalid JSON, not an object, `"text"` missing or not a
string) it stops with the error `line N: <reason>`. Lines before it have been answered in full
on stdout (each result is written in one piece); nothing is written for the bad line or after.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, TextIO

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
        text = sys.stdin.read().removesuffix("\n").removesuffix("\r")
    result = smart_encode(text, shift_table=shift_table)
    if as_json:
        typer.echo(_dumps(_result_dict(result, applied=smart_encoding)))
    else:
        _print_human(result, applied=smart_encoding)


def _run_batch(source: str, *, smart: bool, shift_table: str | None) -> None:
    """Answer every JSON line of `source`; stop at the first bad one (see module docstring)."""
    stream: TextIO
    if source == "-":
        stream = sys.stdin
    else:
        try:
            stream = Path(source).open(encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise InvalidInput(f"{source}: {exc.strerror}", field="batch") from None
    out = sys.stdout
    try:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise _bad_line(number, f"invalid JSON: {exc.msg}") from None
            if not isinstance(record, dict):
                raise _bad_line(number, "expected a JSON object")
            value = record.get("text")
            if not isinstance(value, str):
                raise _bad_line(
                    number, '"text" must be a string' if "text" in record else 'missing "text"'
                )
            answer = _result_dict(smart_encode(value, shift_table=shift_table), applied=smart)
            if "id" in record:
                answer = {"id": record["id"], **answer}
            # One write per line: a line is either complete on stdout or absent.
            out.write(_dumps(answer) + "\n")
        out.flush()
    finally:
        if stream is not sys.stdin:
            stream.close()


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
        console.print(f"part {number}: {escape(json.dumps(part, ensure_ascii=False))}")
    if result.applied:
        verb = "applied" if applied else "would save"
        saved = result.before.segments - result.after.segments
        console.print(f"smart encoding {verb}: {saved} segment(s), {len(result.changes)} change(s)")
        for c in result.changes:
            console.print(f"  {c.start}:{c.end} {escape(c.reason)}")
    elif result.unencodable:
        chars = " ".join(json.dumps(ch, ensure_ascii=False) for ch in result.unencodable)
        console.print(f"UCS-2 because of: {escape(chars)}")


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False)


def _bad_line(number: int, reason: str) -> InvalidInput:
    return InvalidInput(f"line {number}: {reason}", field=f"line {number}")
