"""Bot filtering by User-Agent on a labelled set (issue 14): how many bot requests are filtered,
how many people are lost.

Each row of ``bench/bots_ua.tsv`` (split, label, kind, user agent, source) is sent as a GET with
the headers a real browser with that UA sends (Accept, Accept-Language, Fetch Metadata, client
hints for Chromium), from a neutral address, five minutes after its message's delivery, through
the real classifier twice:

- **provisional**: `SignalsClassifier.classify`, what the classification job stores at once;
- **final**: `services.bots.finalize_settled` (behaviour windows included) over all the rows as
  one campaign, each row its own recipient ten minutes after the previous one, on an in-memory
  store (the verdict logic is the service's; only rows are kept in a list).

A bot is *filtered* when its verdict is not counted (``preview``, ``scanner``, ``automation``,
``probe``); a person is *lost* when theirs is not counted. Rows are split ``dev`` (collected
while the rules were written) and ``heldout`` (collected after, and never used to tune them).

    .venv/bin/python bench/bots_ua.py              # both splits, both paths
    .venv/bin/python bench/bots_ua.py --misses     # also list what is misjudged
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from clicktrail.bootstrap import SignalsClassifier
from clicktrail.domain.bots.model import Verdict
from clicktrail.domain.bots.rules import NOT_HUMAN
from clicktrail.services import bots
from clicktrail.services.ports import Selection, StoredRequest

DATA = Path(__file__).with_name("bots_ua.tsv")
S = 1_000_000  # µs per second
START_US = 1_780_000_000 * S


@dataclass(frozen=True, slots=True)
class Row:
    """One labelled user agent."""

    split: str  # dev | heldout
    label: str  # bot | human
    kind: str  # e.g. library, monitor, preview, browser, in_app
    user_agent: str
    source: str


def load(path: Path = DATA) -> list[Row]:
    """Return the rows of the labelled set (lines starting with '#' are comments)."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 5 or fields[1] not in ("bot", "human"):
            raise ValueError(f"{path.name}: line {n}: expected split, label, kind, UA, source")
        rows.append(Row(*fields))
    return rows


def browser_headers(user_agent: str) -> dict[str, str]:
    """Return the headers a real browser claiming `user_agent` sends on a link navigation
    (lowercase names, as stored)."""
    headers = {
        "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "accept-language": "en-US,en;q=0.9",
        "accept-encoding": "gzip, deflate, br",
        "upgrade-insecure-requests": "1",
        "sec-fetch-site": "none",
        "sec-fetch-mode": "navigate",
        "sec-fetch-user": "?1",
        "sec-fetch-dest": "document",
        "_http": "2",
    }
    if "Chrome/" in user_agent and "iPhone" not in user_agent and "iPad" not in user_agent:
        mobile = "Mobile" in user_agent
        headers["sec-ch-ua"] = '"Chromium";v="125", "Not.A/Brand";v="24"'
        headers["sec-ch-ua-mobile"] = "?1" if mobile else "?0"
        headers["sec-ch-ua-platform"] = '"Android"' if mobile else '"Windows"'
    return headers


def requests_of(rows: Sequence[Row]) -> list[StoredRequest]:
    """Return one stored request per row: its own recipient and message, ten minutes apart,
    five minutes after delivery, from documentation addresses (no network evidence)."""
    out = []
    for i, row in enumerate(rows):
        at = START_US + i * 600 * S
        out.append(
            StoredRequest(
                click_id=f"c{i}", campaign_id=1, message_id=i + 1, contact_id=i + 1,
                link_id=1, at_us=at, method="GET", ip=f"203.0.113.{i % 250 + 1}",
                user_agent=row.user_agent, headers=browser_headers(row.user_agent),
                sent_us=at - 310 * S, delivered_us=at - 300 * S, row_id=i + 1,
            )
        )  # fmt: skip
    return out


class ListStore:
    """The part of the `Store` port that finalization uses, over a list of requests."""

    def __init__(self, requests: Sequence[StoredRequest]) -> None:
        self.rows = {r.click_id: r for r in requests}

    def requests_to_finalize(
        self,
        before_us: int,
        limit: int,
        after: tuple[int, int, int] | None = None,
        also: Selection | None = None,
    ) -> list[tuple[int, int, int]]:
        """Keys of pending requests before `before_us`, after `after`, in settle order."""
        keys = sorted(
            r.settle_key
            for r in self.rows.values()
            if r.at_us < before_us and not r.final and (after is None or r.settle_key > after)
        )
        return keys[:limit]

    def requests_between(self, campaign_id: int, from_us: int, to_us: int) -> list[StoredRequest]:
        """The campaign's requests in [from_us, to_us], in time order."""
        found = [
            r
            for r in self.rows.values()
            if r.campaign_id == campaign_id and from_us <= r.at_us <= to_us
        ]
        return sorted(found, key=lambda r: (r.at_us, r.row_id))

    def link_count(self, campaign_id: int) -> int:
        """One link per message."""
        return 1

    def save_verdicts(self, verdicts: Sequence[tuple[str, Verdict, bool]]) -> None:
        """Store (click id, verdict, final)."""
        for cid, verdict, final in verdicts:
            self.rows[cid] = replace(self.rows[cid], verdict=verdict, final=final)

    def record_early_sightings(self, sightings: Sequence[tuple[str, int, int]]) -> None:
        """Not needed here: no request is early."""


@dataclass
class Judged:
    """A row with its provisional and final verdicts."""

    row: Row
    provisional: Verdict
    final: Verdict


def judge(rows: Sequence[Row]) -> list[Judged]:
    """Return each row's provisional and final verdicts through the real classifier."""
    classifier = SignalsClassifier()
    requests = [
        replace(r, verdict=classifier.classify(r)) for r in requests_of(rows)
    ]  # the classification job
    store = ListStore(requests)
    end = max(r.at_us for r in requests) + 3600 * S
    bots.finalize_settled(store, end, rules=bots.DEFAULT_RULES, ip_kind=classifier.ip_kind)  # type: ignore[arg-type]
    out = []
    for row, req in zip(rows, requests, strict=True):
        final = store.rows[req.click_id]
        assert final.final
        assert final.verdict is not None
        assert req.verdict is not None
        out.append(Judged(row, req.verdict, final.verdict))
    return out


@dataclass
class Rates:
    """Detection and false-positive rates of one split on one path."""

    bots: int
    bots_filtered: int
    humans: int
    humans_filtered: int

    @property
    def detection(self) -> float:
        """Share of bot requests not counted as clicks."""
        return self.bots_filtered / self.bots if self.bots else 1.0

    @property
    def false_positive(self) -> float:
        """Share of people's requests not counted as clicks."""
        return self.humans_filtered / self.humans if self.humans else 0.0


def rates(judged: Sequence[Judged], split: str | None, path: str) -> Rates:
    """Return the rates of `split` (None: all rows) on `path` (provisional | final)."""
    r = Rates(0, 0, 0, 0)
    for j in judged:
        if split is not None and j.row.split != split:
            continue
        filtered = getattr(j, path).verdict in NOT_HUMAN
        if j.row.label == "bot":
            r.bots += 1
            r.bots_filtered += filtered
        else:
            r.humans += 1
            r.humans_filtered += filtered
    return r


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--misses", action="store_true", help="List misjudged rows.")
    args = parser.parse_args()
    judged = judge(load(args.data))
    print(
        f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"Python {platform.python_version()}, {args.data.name}"
    )
    print("| split | path | bots filtered | humans filtered |")
    print("|---|---|---|---|")
    for split in ("dev", "heldout", None):
        for path in ("provisional", "final"):
            r = rates(judged, split, path)
            print(
                f"| {split or 'all'} | {path} | {r.bots_filtered}/{r.bots} "
                f"({100 * r.detection:.1f} %) | {r.humans_filtered}/{r.humans} "
                f"({100 * r.false_positive:.1f} %) |"
            )
    kinds: Counter[tuple[str, str]] = Counter()
    missed: Counter[tuple[str, str]] = Counter()
    for j in judged:
        kinds[(j.row.label, j.row.kind)] += 1
        if (j.final.verdict in NOT_HUMAN) != (j.row.label == "bot"):
            missed[(j.row.label, j.row.kind)] += 1
    print("\nmisjudged (final) by kind: " + ", ".join(
        f"{label}/{kind} {missed[(label, kind)]}/{n}" for (label, kind), n in sorted(kinds.items())
        if missed[(label, kind)]
    ) or "none")  # fmt: skip
    if args.misses:
        for j in judged:
            if (j.final.verdict in NOT_HUMAN) != (j.row.label == "bot"):
                print(
                    f"{j.row.split}\t{j.row.label}\t{j.final.verdict}\t"
                    f"{','.join(j.final.reasons)}\t{j.row.user_agent}"
                )


if __name__ == "__main__":
    sys.exit(main())
