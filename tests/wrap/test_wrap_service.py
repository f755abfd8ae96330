"""The wrap service on SQLite and PostgreSQL where HTTP cannot reach: two senders retrying the
same batch at the same moment, and a token that collides with a stored one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import sqlalchemy as sa

from clicktrail.domain.tokens import new_token
from clicktrail.services.wrapping import CampaignSpec, WrapItem, WrapOutcome, wrap_messages
from clicktrail.storage import tables
from clicktrail.storage.wrapping import WrapQueries
from factories import NOW_US, Repos, make_domain, make_workspace

SPEC = CampaignSpec(name="Orders", slug="orders")


def _items(n: int) -> list[WrapItem]:
    return [
        WrapItem(to=f"+1415555{i:04d}", text=f"Order {i}: https://shop.example.com/o/{i}",
                 client_ref=f"o{i}")
        for i in range(n)
    ]  # fmt: skip


def _count(store: Repos, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_concurrent_retries_of_one_batch_make_each_message_once(store: Repos) -> None:
    ws = make_workspace(store)
    make_domain(store, ws)
    wraps = WrapQueries(store.engine)
    items = _items(300)
    where = [f"/items/{i}" for i in range(len(items))]
    results: list[WrapOutcome] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def sender() -> None:
        try:
            start.wait()
            results.append(
                wrap_messages(
                    store, wraps, ws, campaign=SPEC, items=items, where=where, clock=lambda: NOW_US
                )
            )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    ids = [[r.message_id for r in outcome.items] for outcome in results]
    assert ids[0] == ids[1] == ids[2]
    assert sum(o.created for o in results) == 300
    assert _count(store, tables.messages) == 300
    assert _count(store, tables.contacts) == 300
    assert _count(store, tables.tokens) == 300


def test_a_colliding_token_is_drawn_again(store: Repos) -> None:
    ws = make_workspace(store)
    make_domain(store, ws)
    wraps = WrapQueries(store.engine)
    first = wrap_messages(store, wraps, ws, campaign=SPEC, items=_items(1), where=["/"],
                          clock=lambda: NOW_US)  # fmt: skip
    taken = first.items[0].links[0].token

    def colliding() -> Callable[[], str]:
        tokens: Iterator[str] = iter([taken])
        return lambda: next(tokens, None) or new_token()

    item = WrapItem(to="+14155550999", text="Again: https://shop.example.com/x", client_ref="x")
    out = wrap_messages(store, wraps, ws, campaign="orders", items=[item], where=["/"],
                        clock=lambda: NOW_US, token_factory=colliding())  # fmt: skip
    token = out.items[0].links[0].token
    assert token != taken
    with store.engine.connect() as conn:
        owner = conn.execute(
            sa.select(tables.tokens.c.message_id).where(tables.tokens.c.token == token)
        ).scalar_one()
        message = conn.execute(
            sa.select(tables.messages.c.public_id).where(tables.messages.c.id == owner)
        ).scalar_one()
    assert message == out.items[0].message_id
    assert out.items[0].text == "Again: " + out.items[0].links[0].short_url
    assert _count(store, tables.messages) == 2
