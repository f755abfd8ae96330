"""`clicktrail bots`: explain bot verdicts, import cloud range files, finalize, re-classify and
process stored requests, a workspace's network lists (`bots networks`, cli/networks.py).

`explain` and `import-ranges` need only the pure rules and the signal adapters: no database,
no settings (`explain --workspace` reads that workspace's network lists). `explain` judges
exactly the request it is given, so pass the headers a browser would have sent (a bare Chrome UA
without Accept-Language or Sec-Fetch-* is, rightly, suspicious).
"""

from __future__ import annotations

import ipaddress
import json
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, TextColumn

from clicktrail.bootstrap import SignalsClassifier
from clicktrail.cli import networks as networks_cli
from clicktrail.cli.options import (
    JsonOpt,
    WorkspaceOpt,
    container,
    err,
    out,
    print_json,
    workspace_of,
)
from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.errors import InvalidInput
from clicktrail.services import attribution, bots, campaigns, receipts
from clicktrail.services.clock import now_us
from clicktrail.signals import (
    NetworkList,
    load_networks,
    parse_range_file,
    workspace_network_list,
    write_ranges,
)

app = typer.Typer(help="Bot and prefetch click filtering.", no_args_is_help=True)
app.add_typer(networks_cli.app, name="networks")

_BATCH_KEYS = frozenset(
    {"user_agent", "ip", "method", "headers", "ms_since_delivery", "ms_since_send"}
)


def explain_request(
    *,
    method: str,
    user_agent: str | None,
    headers: Mapping[str, str],
    ip: str | None,
    ms_since_delivery: int | None,
    ms_since_send: int | None = None,
    networks: NetworkList | None = None,
) -> Verdict:
    """Return the request-level verdict of one described request, from the classifier the
    jobs process uses (`services.bots.Classifier`), with `networks` as the extra networks."""
    return SignalsClassifier(networks).explain(
        method=method,
        user_agent=user_agent,
        headers=headers,
        ip=ip,
        ms_since_delivery=ms_since_delivery,
        ms_since_send=ms_since_send,
    )


def verdict_json(verdict: Verdict) -> str:
    """Return the one-line JSON that `explain` prints for a verdict."""
    return json.dumps(
        {"verdict": verdict.verdict, "score": verdict.score, "reasons": list(verdict.reasons)}
    )


def _header_pairs(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in values:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            raise InvalidInput(f"--header {raw!r}: expected NAME:VALUE", field="--header")
        out[name.strip().lower()] = value.strip()
    return out


def _check_ip(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{where}: ip must be a string", field=where)
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        raise InvalidInput(f"{where}: ip {value!r} is not an IP address", field=where) from None
    return value.strip()


def _optional_int(value: Any, name: str, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where}: {name} must be a number of milliseconds", field=where)
    return int(value)


def _batch_line(text: str, where: str, networks: NetworkList | None) -> Verdict:
    try:
        item = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{where}: invalid JSON ({exc.msg})", field=where) from None
    if not isinstance(item, dict):
        raise InvalidInput(f"{where}: expected a JSON object", field=where)
    unknown = sorted(set(item) - _BATCH_KEYS)
    if unknown:
        raise InvalidInput(
            f"{where}: unknown key(s) {', '.join(unknown)}; expected {sorted(_BATCH_KEYS)}",
            field=where,
        )
    user_agent = item.get("user_agent")
    if user_agent is not None and not isinstance(user_agent, str):
        raise InvalidInput(f"{where}: user_agent must be a string or null", field=where)
    method = item.get("method", "GET")
    if not isinstance(method, str) or not method.strip():
        raise InvalidInput(f"{where}: method must be a non-empty string", field=where)
    headers = item.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise InvalidInput(f"{where}: headers must be an object of strings", field=where)
    return explain_request(
        method=method.strip(),
        user_agent=user_agent,
        headers=headers,
        ip=_check_ip(item.get("ip"), where),
        ms_since_delivery=_optional_int(item.get("ms_since_delivery"), "ms_since_delivery", where),
        ms_since_send=_optional_int(item.get("ms_since_send"), "ms_since_send", where),
        networks=networks,
    )


def _lines(batch: str) -> Iterator[str]:
    if batch == "-":
        yield from sys.stdin
        return
    try:
        with Path(batch).open(encoding="utf-8") as fh:
            yield from fh
    except OSError as exc:
        raise InvalidInput(
            f"--batch {batch}: cannot read ({exc.strerror})", field="--batch"
        ) from None


@app.command()
def explain(
    user_agent: Annotated[
        str | None, typer.Option("--user-agent", help="User-Agent; omit for a missing header.")
    ] = None,
    ip: Annotated[str | None, typer.Option("--ip", help="Client IP address.")] = None,
    method: Annotated[str, typer.Option("--method", help="HTTP method.")] = "GET",
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="A request header NAME:VALUE (repeatable)."),
    ] = None,
    ms_since_delivery: Annotated[
        int | None,
        typer.Option("--ms-since-delivery", help="Milliseconds after the delivery receipt."),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch",
            help='JSON lines {"user_agent", "ip", "method", "headers", "ms_since_delivery"}; '
            "'-' for stdin. Prints one verdict per line.",
        ),
    ] = None,
    networks: Annotated[
        list[Path] | None,
        typer.Option(
            "--networks",
            help="A CIDR list or cloud range file (see import-ranges) to look addresses up in.",
        ),
    ] = None,
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace",
            "-w",
            help="Also look addresses up in this workspace's network lists (bots networks), "
            "over --networks or, without it, the configured bot_networks_file.",
        ),
    ] = None,
) -> None:
    """Print why a request is (or is not) a bot: {"verdict", "score", "reasons"} as JSON."""
    extra = load_networks(networks, name="cli") if networks else None
    if workspace is not None:
        extra = _workspace_networks(workspace, extra)
    if batch is None:
        verdict = explain_request(
            method=method,
            user_agent=user_agent,
            headers=_header_pairs(header or []),
            ip=_check_ip(ip, "--ip"),
            ms_since_delivery=ms_since_delivery,
            networks=extra,
        )
        typer.echo(verdict_json(verdict))
        return
    for n, line in enumerate(_lines(batch), 1):
        if line.strip():
            typer.echo(verdict_json(_batch_line(line, f"line {n}", extra)))


def _workspace_networks(ref: str, given: NetworkList | None) -> NetworkList | None:
    """Return workspace `ref`'s lists over `given`, or over the installation's file."""
    from clicktrail.bootstrap import Container
    from clicktrail.config import load_settings
    from clicktrail.services import networks, workspaces

    c = Container(load_settings())
    try:
        ws = workspaces.resolve_workspace(c.workspaces, ref)
        base = given if given is not None else c.classifier.networks
        rows = networks.workspace_ranges(c.network_lists, ws)
    finally:
        c.dispose()
    return workspace_network_list([(r.cidr, r.owner, r.kind, r.list_name) for r in rows], base)


@app.command("import-ranges")
def import_ranges(
    files: Annotated[list[Path], typer.Argument(help="Downloaded range files.")],
    owner: Annotated[str | None, typer.Option(help="Owner name for every range.")] = None,
    kind: Annotated[
        str | None, typer.Option(help="Network kind for every range (default: from the file).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the CSV here (default stdout).")
    ] = None,
) -> None:
    """Convert published cloud range files (AWS, Google, Azure, Cloudflare) into a CIDR CSV.

    Reads local files only: download ip-ranges.json, cloud.json, goog.json, ServiceTags_*.json
    or ips-v4 / ips-v6 yourself. The CSV is what `explain --networks` reads.
    """
    ranges = [r for f in files for r in parse_range_file(f, owner=owner, kind=kind)]
    text = write_ranges(ranges)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"{len(ranges)} ranges written to {output}", err=True)


@app.command()
def finalize(
    campaign: Annotated[str, typer.Argument(help="Campaign slug or id.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Give every request of CAMPAIGN its final bot verdict now, without waiting for the
    settle window (bot_settle_seconds); print how many requests it finalized.

    Later requests are still judged with these as neighbours, but can no longer change them.
    """
    from clicktrail.bootstrap import Container
    from clicktrail.config import load_settings
    from clicktrail.services import campaigns, clicks, workspaces
    from clicktrail.services.clock import now_us

    c = Container(load_settings())
    try:
        ws = workspaces.resolve_workspace(c.workspaces, workspace)
        cp = campaigns.get_campaign(c.campaigns, ws, campaign)
        done = clicks.finalize_campaign(c.clicks, c.classifier, cp.id, now_us())
    finally:
        c.dispose()
    if as_json:
        typer.echo(json.dumps({"campaign": cp.slug, "finalized": done}))
        return
    typer.echo(f"{done} requests of {cp.slug} finalized")


@app.command("reclassify")
def bots_reclassify(
    campaign: Annotated[
        str | None, typer.Option(help="Only this campaign (slug or id; needs --workspace).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only requests from this time on (ISO 8601).")
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-run every bot rule over stored requests and rebuild their verdicts."""
    c = container()
    campaign_id = None
    if campaign is not None:
        campaign_id = campaigns.get_campaign(c.campaigns, workspace_of(c, workspace), campaign).id
    since_us = receipts.parse_time(since, "since", 0) if since else None
    with Progress(TextColumn("reclassified"), TextColumn("{task.completed}"), console=err,
                  transient=True) as bar:  # fmt: skip
        task = bar.add_task("requests", total=None)
        result = bots.reclassify(
            c.clicks, c.classifier, now_us(), campaign_id=campaign_id, since_us=since_us,
            settle_us=c.settings.bot_settle_seconds * 1_000_000,
            progress=lambda n: bar.advance(task, n),
        )  # fmt: skip
    if result.requests:  # credits follow verdicts: the jobs process re-attributes the history
        ws_ids = None if campaign is None else [workspace_of(c, workspace).id]
        attribution.request_reattribution(c.attribution, ws_ids, now_us())
    if as_json:
        print_json(result.__dict__)
        return
    out.print(
        f"{result.requests} requests re-classified, {result.verdict_changes} changed verdict, "
        f"{result.finalized} final"
    )


@app.command("process")
def bots_process(as_json: JsonOpt = False) -> None:
    """Classify the requests waiting in the click inbox now and move them to the clicks table
    (the server's jobs process does this every second; use it after a server was stopped in
    the middle of a backlog, or in scripts that need every click in the reports at once)."""
    c = container()
    waiting = c.clicks.inbox_size()
    started = time.perf_counter()
    _, final_pass = c.background_jobs()
    done = final_pass()
    seconds = time.perf_counter() - started
    if as_json:
        print_json({"waiting": waiting, "processed": done, "seconds": round(seconds, 3)})
        return
    out.print(f"{done} requests classified and moved to clicks in {seconds:.1f} s")
