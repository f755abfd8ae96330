"""`clicktrail campaign send|status|pause|resume|cancel|release|test-send`: sending jobs.

Registered on the `campaign` group by the root command (``sending.register(campaign_app)``);
errors from services reach the root command, which maps them to messages and exit codes.

`send` runs the job in the foreground: Ctrl-C (or SIGTERM) pauses it after the batch in hand,
so nothing is left in doubt. A job started through the API runs in the server instead
(docs/providers.md, "Sending jobs").
"""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from clicktrail.bootstrap import Container
from clicktrail.cli.options import JsonOpt, WorkspaceOpt
from clicktrail.config import load_settings
from clicktrail.domain.errors import InvalidInput
from clicktrail.domain.models import Campaign, Workspace
from clicktrail.domain.report import iso_us
from clicktrail.services import campaigns, workspaces
from clicktrail.services.sending import JobSpec, SendStatus

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

CampaignArg = Annotated[str, typer.Argument(help="Campaign slug or id.")]
ProviderOpt = Annotated[
    str | None,
    typer.Option(
        help="SMS provider: outbox or one of `clicktrail provider list` (default: the job's, "
        "else outbox)."
    ),
]
OutboxOpt = Annotated[
    Path | None, typer.Option(help="Outbox file (default <data_dir>/outbox.jsonl).")
]


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _open(workspace: str | None, campaign: str) -> tuple[Container, Workspace, Campaign]:
    c = Container(load_settings())
    ws = workspaces.resolve_workspace(c.workspaces, workspace)
    return c, ws, campaigns.get_campaign(c.campaigns, ws, campaign)


def _provider_name(provider: str | None, outbox: Path | None) -> str | None:
    if outbox is not None:
        if provider not in (None, "outbox"):
            raise InvalidInput("--outbox goes with the outbox provider only", field="outbox")
        # Stored with the job so that a run elsewhere (the server) writes to the same file.
        return f"outbox:{outbox.resolve()}"
    return provider


@contextmanager
def _stop_on_signals() -> Iterator[Callable[[], bool]]:
    """Turn Ctrl-C and SIGTERM into a flag the send loop reads between batches (a signal
    landing during a provider call must not leave messages in doubt)."""
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        stop.set()
        err.print("stopping after the batch in hand: the job is paused (resume to continue)")

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop.is_set
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def status_dict(st: SendStatus) -> dict[str, Any]:
    """Return a job's status as printed by ``--json`` (the API's `SendJobOut` shape)."""
    return {
        "campaign": st.campaign,
        "slug": st.slug,
        "state": st.state,
        "running": st.running,
        "provider": st.provider,
        "rate": st.rate,
        "quiet_hours": st.quiet_hours,
        "created": st.created,
        **dataclasses.asdict(st.counts),
        "last_error": st.last_error,
        "started_at": iso_us(st.created_us),
        "finished_at": iso_us(st.finished_us),
    }


def _print_status(st: SendStatus) -> None:
    c = st.counts
    line = (
        f"campaign {st.slug}: {st.state}"
        + (" (a sender is running)" if st.running else "")
        + f"; {st.created} messages"
    )
    out.print(line, markup=False)
    t = Table(show_header=False)
    for label, value in [
        ("queued (due now)", c.queued), ("deferred (quiet hours, retry backoff)", c.deferred),
        ("sending", c.sending), ("sent", c.sent), ("delivered", c.delivered),
        ("failed", c.failed), ("cancelled", c.cancelled), ("in doubt (unknown)", c.unknown),
        ("skipped: opted out", c.skipped_opted_out), ("skipped: invalid number", c.skipped_invalid),
        ("held out (the campaign's holdout)", c.held_out),
    ]:  # fmt: skip
        t.add_row(label, str(value))
    out.print(t)
    if st.provider is not None:
        rate = "no limit" if not st.rate else f"{st.rate:g}/s"
        quiet = f", quiet hours {st.quiet_hours} (recipient's time)" if st.quiet_hours else ""
        out.print(f"via {st.provider} at {rate}{quiet}", markup=False)
    if st.last_error:
        err.print(f"[yellow]last error:[/] {st.last_error}")
    if c.unknown:
        err.print(
            f"[yellow]{c.unknown} message(s) in doubt:[/] the provider cannot say whether it took "
            f"them. `clicktrail campaign release {st.slug} --resend` or `--assume-sent`."
        )


def send(
    campaign: CampaignArg,
    provider: ProviderOpt = None,
    outbox: OutboxOpt = None,
    rate: Annotated[
        float | None,
        typer.Option(
            help="Messages per second per sender (0: no limit; default: the provider's, else "
            "the send_rate setting)."
        ),
    ] = None,
    quiet_hours: Annotated[
        str | None,
        typer.Option(
            help="HH:MM-HH:MM: no message in this span of the recipient's local time (e.g. "
            "21:00-08:00); '' clears."
        ),
    ] = None,
    max_attempts: Annotated[
        int | None, typer.Option(help="Attempts per message refused for now before it fails.")
    ] = None,
    max_age: Annotated[
        int | None, typer.Option(help="Seconds after its first attempt to give a message up.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Messages per provider call (default 100).", min=1)
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Wrap and send a campaign as a job, in the foreground (resumes an interrupted send;
    Ctrl-C pauses it)."""
    c, ws, cp = _open(workspace, campaign)
    sending = c.sending
    name = _provider_name(provider, outbox)
    job = sending.jobs.get(cp.id)
    sender = sending.provider_for(ws, name or (job.provider if job else "outbox"))
    spec = JobSpec(name, rate, quiet_hours, max_attempts, max_age)
    with (
        Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}"),
                 console=err, transient=True) as bar,
        _stop_on_signals() as stopping,
    ):  # fmt: skip
        tasks: dict[str, Any] = {}

        def progress(stage: str, n: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=None)
            bar.advance(tasks[stage], n)

        summary = sending.send(
            ws, cp, sender, spec=spec, progress=progress, should_stop=stopping,
            batch_size=batch_size,
        )  # fmt: skip
    if as_json:
        _print_json(dataclasses.asdict(summary))
        return
    out.print(
        f"campaign {cp.slug}: {summary.created} messages wrapped, {summary.sent} sent "
        f"({summary.segments} segments), {summary.failed} failed, via {sender.name}; "
        f"job {summary.state}",
        markup=False,
    )
    skipped = summary.skipped_opted_out + summary.skipped_invalid
    if skipped:
        out.print(
            f"skipped {summary.skipped_opted_out} opted-out and {summary.skipped_invalid} "
            "invalid number(s)"
        )
    if summary.held_out:
        out.print(f"held out {summary.held_out} contact(s): the campaign's holdout gets nothing")
    if summary.state != "done":
        _print_status(sending.status(cp))


def status(campaign: CampaignArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Show a campaign's sending job: its state and messages by what happened to them."""
    c, _ws, cp = _open(workspace, campaign)
    st = c.sending.status(cp)
    if as_json:
        _print_json(status_dict(st))
        return
    _print_status(st)


def pause(campaign: CampaignArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Pause a campaign's send: its sender stops after the batch in hand."""
    c, _ws, cp = _open(workspace, campaign)
    st = c.sending.pause(cp)
    if as_json:
        _print_json(status_dict(st))
        return
    out.print(f"campaign {cp.slug}: paused; `clicktrail campaign resume {cp.slug}` continues")


def resume(
    campaign: CampaignArg,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="Only set the job running again: a server (send_in_server) continues it.",
        ),
    ] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Resume a paused send and continue it in the foreground (or, with --detach, in a server)."""
    c, ws, cp = _open(workspace, campaign)
    sending = c.sending
    st = sending.resume(cp)
    if detach:
        if as_json:
            _print_json(status_dict(st))
        else:
            out.print(f"campaign {cp.slug}: running; a server with send_in_server continues it")
        return
    with _stop_on_signals() as stopping:
        summary = sending.run(ws, cp, should_stop=stopping)
    if as_json:
        _print_json(dataclasses.asdict(summary))
        return
    out.print(
        f"campaign {cp.slug}: {summary.sent} sent, {summary.failed} failed; job {summary.state}"
    )


def cancel(campaign: CampaignArg, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel a campaign's send: messages not yet handed to the provider are never sent."""
    c, _ws, cp = _open(workspace, campaign)
    st = c.sending.cancel(cp)
    if as_json:
        _print_json(status_dict(st))
        return
    out.print(
        f"campaign {cp.slug}: cancelled; {st.counts.cancelled} message(s) will not be sent, "
        f"{st.counts.sent} were sent"
    )


def release(
    campaign: CampaignArg,
    resend: Annotated[
        bool, typer.Option("--resend", help="Queue them again (a recipient may get two).")
    ] = False,
    assume_sent: Annotated[
        bool, typer.Option("--assume-sent", help="Take them as sent (receipts may correct).")
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Decide about messages in doubt (handed to a provider that cannot say whether it took
    them): --resend or --assume-sent."""
    if resend == assume_sent:
        raise InvalidInput("give exactly one of --resend and --assume-sent", field="resend")
    c, _ws, cp = _open(workspace, campaign)
    n = c.sending.release(cp, resend=resend)
    what = "queued again: `clicktrail campaign send` sends them" if resend else "taken as sent"
    out.print(f"campaign {cp.slug}: {n} message(s) {what}", markup=False)


def send_test(
    campaign: CampaignArg,
    to: Annotated[str, typer.Option("--to", help="Phone to send the test to (E.164).")],
    contact: Annotated[
        str | None,
        typer.Option(
            help="Personalize for this contact (phone or external id; default: the "
            "contact with the --to phone, else the first of the audience)."
        ),
    ] = None,
    provider: ProviderOpt = None,
    outbox: OutboxOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send the campaign once to a phone, with real tracked links, kept out of reports."""
    c, ws, cp = _open(workspace, campaign)
    sending = c.sending
    name = _provider_name(provider, outbox)
    job = sending.jobs.get(cp.id)
    sender = sending.provider_for(ws, name or (job.provider if job else "outbox"))
    result = sending.test_send(
        ws, cp, sender, to=to, contact_ref=contact, region=c.settings.default_region or None
    )
    if as_json:
        _print_json(dataclasses.asdict(result))
        return
    out.print(f"test message {result.message_id} to {result.to}: {result.status}", markup=False)
    out.print(result.body, markup=False)
    if result.error_code or result.error_message:
        err.print(f"[red]{result.error_code or 'error'}:[/] {result.error_message or ''}")
        raise typer.Exit(1)


def register(campaign_app: typer.Typer) -> None:
    """Add the sending commands to the `campaign` group."""
    campaign_app.command("send")(send)
    campaign_app.command("status")(status)
    campaign_app.command("pause")(pause)
    campaign_app.command("resume")(resume)
    campaign_app.command("cancel")(cancel)
    campaign_app.command("release")(release)
    campaign_app.command("test-send")(send_test)
