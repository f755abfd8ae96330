"""The stream-out against the real brokers (NATS JetStream, Redis Streams) on SQLite and
PostgreSQL: events arrive in the outbox's order with their ids and payloads, a publisher
killed between the broker's acknowledgement and its cursor's move publishes again without a
duplicate reaching consumers, a broker that is down holds events back until it is back, and each
workspace's events stay under its own subjects and keys."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
import sqlalchemy as sa
from brokers_read import Broker

from clicktrail.brokers import open_publisher
from clicktrail.domain import events as ev
from clicktrail.domain.events import StoredEvent
from clicktrail.domain.models import Workspace
from clicktrail.services.optouts import ManualChange, set_opt_outs
from clicktrail.services.streams import CONSUMER, StreamOut
from clicktrail.storage.events import EventQueries, append_events, stream_workspaces
from clicktrail.storage.optouts import OptOutQueries
from clicktrail.storage.streams import StreamQueries
from factories import NOW_US, Repos, make_workspace

TYPES = (ev.CLICK_CREATED, ev.MESSAGE_DELIVERED, ev.CONVERSION_CREATED, ev.CONTACT_OPTED_OUT)


def add_events(engine: sa.Engine, workspaces: Sequence[Workspace], n: int, start: int = 0) -> None:
    """Write `n` events, round robin over `workspaces`, a few per transaction."""
    for lo in range(start, start + n, 5):
        with engine.begin() as conn:
            append_events(conn, [
                ev.event(workspaces[i % len(workspaces)].id, TYPES[i % len(TYPES)], f"k{i}",
                         NOW_US + i, {"i": i, "text": f"événement {i}"})
                for i in range(lo, min(lo + 5, start + n))
            ], NOW_US)  # fmt: skip


def outbox(engine: sa.Engine) -> list[StoredEvent]:
    """Every event in commit order (a cursor of the test's own)."""
    return EventQueries(engine).events_after("test-probe", 100_000)


def cursor(engine: sa.Engine) -> list[StoredEvent]:
    """The events the stream-out has not passed yet."""
    return EventQueries(engine).events_after(CONSUMER, 100_000)


class Clock:
    """A monotonic clock the test moves (backoff without waiting)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stream_out(store: Repos, broker: Broker, **kw: object) -> StreamOut:
    return StreamOut(StreamQueries(store.engine), open_publisher(broker.target()), **kw)  # type: ignore[arg-type]


def test_events_arrive_in_order_with_ids_and_payloads(store: Repos, broker: Broker) -> None:
    a, b = make_workspace(store, name="Acme"), make_workspace(store, name="Beta Corp")
    add_events(store.engine, [a, b], 23)
    out = stream_out(store, broker, batch=7)
    try:
        assert out.tick() == 23
        assert out.tick() == 0  # nothing new
    finally:
        out.close()
    got = broker.read()
    want = outbox(store.engine)
    assert [g.event_id for g in got] == [e.public_id for e in want]
    assert [g.payload for g in got] == [e.payload for e in want]
    assert [g.type for g in got] == [e.type for e in want]
    slugs = {a.id: a.slug, b.id: b.slug}
    assert [g.workspace for g in got] == [slugs[e.workspace_id] for e in want]
    first = json.loads(got[0].payload)
    assert first["type"] == ev.CLICK_CREATED and first["data"]["text"] == "événement 0"
    if broker.kind == "nats":
        assert got[0].where == f"{broker.prefix}.acme.click.created"
        assert got[1].where == f"{broker.prefix}.beta-corp.message.delivered"
    else:
        assert {g.where for g in got} == {f"{broker.prefix}:events:acme",
                                          f"{broker.prefix}:events:beta-corp"}  # fmt: skip
    assert cursor(store.engine) == []


def test_a_publisher_killed_before_its_cursor_moved_publishes_no_duplicate(
    store: Repos, broker: Broker
) -> None:
    ws = make_workspace(store)
    add_events(store.engine, [ws], 30)

    class Killed(BaseException):
        """The process dies: nothing after this line of the publisher runs."""

    class DiesOnSecondMove(StreamQueries):
        moves = 0

        def advance(self, consumer: str, last: StoredEvent, now_us: int) -> None:
            self.moves += 1
            if self.moves == 2:  # the broker acknowledged batch 2; the cursor stays after batch 1
                raise Killed
            super().advance(consumer, last, now_us)

    first = StreamOut(DiesOnSecondMove(store.engine), open_publisher(broker.target()), batch=10)
    with pytest.raises(Killed):
        first.tick()
    first.publisher.close()
    assert len(cursor(store.engine)) == 20  # batch 2 is to be published again
    assert len(broker.read()) == 20

    restarted = stream_out(store, broker, batch=10)
    try:
        assert restarted.tick() == 20
    finally:
        restarted.close()
    got = broker.read()
    assert [g.event_id for g in got] == [e.public_id for e in outbox(store.engine)]  # no repeat
    assert restarted.publisher.repeats == 10  # type: ignore[attr-defined]  # refused as repeats
    if broker.kind == "nats":
        assert broker.stream_info().state.messages == 30  # type: ignore[attr-defined]


def test_events_wait_while_the_broker_is_down(store: Repos, broker: Broker) -> None:
    from e2e.tcp_proxy import TcpProxy

    host, port = broker.url.split("://")[1].split("/")[0].split(":")
    proxy = TcpProxy(host, int(port))
    proxy.block()  # the broker is down: connections are closed as they arrive
    ws = make_workspace(store)
    add_events(store.engine, [ws], 12)
    scheme = broker.url.split("://")[0]
    tail = "/0" if broker.kind == "redis" else ""
    clock = Clock()
    out = StreamOut(StreamQueries(store.engine),
                    open_publisher(broker.target(f"{scheme}://127.0.0.1:{proxy.port}{tail}")),
                    batch=5, monotonic=clock)  # fmt: skip
    try:
        assert out.tick() == 0
        assert out.failures == 1 and out.retry_at == clock.now + 1.0
        assert len(cursor(store.engine)) == 12  # nothing skipped
        assert out.tick() == 0 and out.failures == 1  # backing off: no try before retry_at
        clock.now += 1.0
        assert out.tick() == 0 and out.failures == 2 and out.retry_at == clock.now + 2.0
        add_events(store.engine, [ws], 3, start=12)
        proxy.unblock()  # back
        assert out.tick() == 0  # still backing off
        clock.now += 2.0
        assert out.tick() == 15
        assert out.failures == 0
    finally:
        out.close()
        proxy.close()
    assert [g.event_id for g in broker.read()] == [e.public_id for e in outbox(store.engine)]


def test_each_workspace_reads_its_own_events_only(store: Repos, broker: Broker) -> None:
    a, b, c = (make_workspace(store, name=n) for n in ("Alpha", "Bravo", "Charlie"))
    add_events(store.engine, [a, b, c], 18)
    out = stream_out(store, broker, workspaces=frozenset({"alpha", "bravo"}))
    try:
        assert out.tick() == 18  # Charlie's events are passed, not published
    finally:
        out.close()
    by_ws = {e.public_id: e.workspace_id for e in outbox(store.engine)}
    for ws in (a, b):
        got = broker.read(ws.slug)
        assert len(got) == 6
        assert {by_ws[g.event_id] for g in got} == {ws.id}
        assert {g.workspace for g in got} == {ws.slug}
    assert broker.read(c.slug) == []
    assert len(broker.read()) == 12


def test_streamed_workspaces_get_events_without_webhook_endpoints(
    store: Repos, broker: Broker
) -> None:
    ws, other = make_workspace(store, name="Streamed"), make_workspace(store, name="Other")
    optouts = OptOutQueries(store.engine)

    def opt_out(w: Workspace, phone: str) -> None:
        set_opt_outs(store.contacts, optouts, w, [ManualChange(phone, True)], where=["x"],
                     source="test", now_us=NOW_US)  # fmt: skip

    opt_out(ws, "+14155550101")
    assert outbox(store.engine) == []  # nobody listens: no event written
    stream_workspaces(store.engine, frozenset({"streamed"}))
    opt_out(ws, "+14155550102")
    opt_out(other, "+14155550103")  # not streamed: still nobody listens
    (event,) = outbox(store.engine)
    assert (event.workspace_id, event.type) == (ws.id, ev.CONTACT_OPTED_OUT)
    stream_workspaces(store.engine, None)  # every workspace
    opt_out(other, "+14155550104")
    out = stream_out(store, broker)
    try:
        assert out.tick() == 2
    finally:
        out.close()
    got = broker.read()
    assert [(g.workspace, g.type) for g in got] == [
        ("streamed", ev.CONTACT_OPTED_OUT),
        ("other", ev.CONTACT_OPTED_OUT),
    ]
    assert json.loads(got[1].payload)["data"]["contact"]["phone"] == "+14155550104"
