"""`clicktrail sms …`: inspect what a text costs as SMS (encoding, segments, parts)."""

from __future__ import annotations

import json

import typer

from clicktrail.domain.sms import analyze

app = typer.Typer(help="Inspect SMS encoding and segments.", no_args_is_help=True)


@app.command("inspect")
def inspect(text: str = typer.Argument(..., help="The text, or - to read stdin.")) -> None:
    """Print the encoding, segments and units of TEXT."""
    if text == "-":
        text = typer.get_text_stream("stdin").read()
    info = analyze(text)
    typer.echo(
        json.dumps({"encoding": info.encoding, "segments": info.segments, "units": info.units})
    )
