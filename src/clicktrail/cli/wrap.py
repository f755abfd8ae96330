"""`clicktrail wrap`: wrap the links of messages your own sender sends, from JSON lines.

Registered on the root command as ``app.command("wrap")(wrap.wrap)``; errors from services
reach the root command, which maps them to messages and exit codes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from clicktrail.bootstrap import Container
from clicktrail.config import load_settings
from clicktrail.domain.errors import InvalidInput
from clicktrail.services import workspaces, wrapping
from clicktrail.services.clock import now_us
from clicktrail.services.wrapping import CampaignSpec, WrapResult

err = Console(stderr=True, highlight=False, soft_wrap=True)


def _line(result: WrapResult, where: str) -> dict[str, Any]:
    return {
        "line": int(where.split()[-1]),
        "message_id": result.message_id,
        "to": result.to,
        "external_id": result.external_id,
        "opted_out": result.opted_out,
        "created": result.created,
        "text": result.text,
        "encoding": result.encoding,
        "segments": result.segments,
        "status": result.status,
        "links": [
            {"link": lk.index + 1, "token": lk.token, "short_url": lk.short_url,
             "destination": lk.destination}
            for lk in result.links
        ],
    }  # fmt: skip


def wrap(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSON lines, one message each: to (or external_id), text, client_ref, region, "
            "first_name. '-' reads standard input."
        ),
    ],
    campaign: Annotated[
        str, typer.Option("--campaign", "-c", help="Campaign slug or id to wrap into.")
    ],
    create: Annotated[
        str | None,
        typer.Option(
            help="Create the campaign (slug --campaign) with this name when it does not exist."
        ),
    ] = None,
    domain: Annotated[
        str | None, typer.Option(help="Short domain of a campaign --create makes.")
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="Country of numbers without +country code (e.g. US).")
    ] = None,
    mark_sent: Annotated[
        bool, typer.Option("--mark-sent", help="Store messages as sent (default: queued).")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the results here (default: standard output)."),
    ] = None,
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace",
            "-w",
            envvar="CLICKTRAIL_WORKSPACE",
            help="Workspace slug or id (not needed when there is only one).",
        ),
    ] = None,
) -> None:
    """Wrap messages for your own sender: one JSON line out per line in (all or nothing).

    Each result has the text to send, its message_id (for receipts), encoding, segments and
    links; a recipient who opted out gets "opted_out": true and no message. Running the same
    file again returns the same messages (keyed by campaign, recipient and client_ref).
    """
    c = Container(load_settings())
    try:
        if str(file) == "-":
            data = sys.stdin.buffer.read()
        else:
            try:
                data = file.read_bytes()
            except OSError as exc:
                raise InvalidInput(f"{file}: {exc.strerror}", field="file") from None
        items, where = wrapping.items_from_lines(data, str(file))
        ws = workspaces.resolve_workspace(c.workspaces, workspace)
        target: str | CampaignSpec = (
            CampaignSpec(name=create, slug=campaign, domain=domain) if create else campaign
        )
        outcome = wrapping.wrap_messages(
            c, c.wrap_queries, ws, campaign=target, items=items, where=where,
            clock=now_us, mark_sent=mark_sent,
            default_region=region or c.settings.default_region or None,
            campaign_field="--campaign", max_items=None,
        )  # fmt: skip
    finally:
        c.dispose()
    lines = "".join(
        json.dumps(_line(r, where[r.index]), ensure_ascii=False) + "\n" for r in outcome.items
    )
    if output is None:
        sys.stdout.write(lines)
    else:
        output.write_text(lines, encoding="utf-8")
    err.print(
        f"campaign {outcome.campaign.slug}: {len(outcome.items)} line(s): {outcome.created} "
        f"wrapped, {outcome.existing} already wrapped, {outcome.opted_out} opted out "
        "(no message: do not send)"
    )
