"""A delivery receipt that arrives after the conversions it bears on (SQLite and PostgreSQL):
the conversions of the delivered message's contact that occurred after the delivery, within a
window, are attributed again at the next pass (the delivery makes a view under last touch);
those before it, and other contacts', are left alone."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from clicktrail.domain.models import Receipt
from clicktrail.services.attribution import Attributor
from clicktrail.storage import tables as t
from clicktrail.storage.attribution import AttributionQueries
from factories import (
    NOW_US,
    Repos,
    make_campaign,
    make_contacts,
    make_domain,
    make_workspace,
    message_ids,
    send,
)

H = 3_600_000_000
T = NOW_US + H  # when the message was delivered, as its late receipt says


def credits(store: Repos) -> dict[tuple[str, str], tuple[str, bool]]:
    cc, cv = t.conversion_credits, t.conversions
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(cv.c.dedup_key, cc.c.model, cc.c.kind, cc.c.settled).join(
                cv, cv.c.id == cc.c.conversion_id
            )
        ).all()
    return {(key, model): (kind, bool(settled)) for key, model, kind, settled in rows}


def test_a_late_delivery_receipt_makes_a_view_of_conversions_after_it(
    store: Repos, tmp_path: Path
) -> None:
    ws = make_workspace(store)
    make_domain(store, ws)
    people = make_contacts(store, ws, 2)
    cp = make_campaign(store, ws)
    send(store, ws, cp, tmp_path / "outbox.jsonl")
    with store.engine.connect() as conn:
        mid = dict(
            conn.execute(
                sa.select(t.messages.c.contact_id, t.messages.c.public_id).where(
                    t.messages.c.campaign_id == cp.id
                )
            ).all()
        )
    # Conversions of contact 0 before and 2 h after the delivery, of contact 1 after it.
    with store.engine.begin() as conn:
        for key, who, at in (("before", 0, T - H), ("after", 0, T + 2 * H), ("other", 1, T + H)):
            conn.execute(
                t.conversions.insert().values(
                    public_id=f"cv_{key}", workspace_id=ws.id, event="purchase",
                    occurred_us=at, received_us=at, contact_id=people[who].id, source="api",
                    dedup_key=key,
                )
            )  # fmt: skip
    queries = AttributionQueries(store.engine)
    job = Attributor(queries)
    job.run_pending(T + 3 * H)
    nothing = {(k, "none"): ("none", True) for k in ("before", "after", "other")}
    assert credits(store) == nothing  # no delivery known yet: no view
    assert len(message_ids(store, cp)) == 2

    store.messages.apply_receipts(
        ws.id, [Receipt(mid[people[0].id], "delivered", T)], skip_unknown=False, source="t",
        now_us=T + 4 * H,
    )  # fmt: skip
    marked = dict(nothing)
    marked[("after", "none")] = ("none", False)  # only the conversion after the delivery
    assert credits(store) == marked
    done = job.run_pending(T + 4 * H)
    assert done.attributed == 1
    got = credits(store)
    assert got[("after", "last_touch")] == ("view", True)
    assert ("after", "none") not in got
    assert got[("before", "none")] == got[("other", "none")] == ("none", True)
    assert job.run_pending(T + 5 * H).attributed == 0  # settled again: nothing left to redo
