"""The stream-out's settings: bad ones named, the composition root's wiring (the job, the
workspaces whose events are written)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clicktrail.bootstrap import Container
from clicktrail.brokers import StreamTarget, check_target, open_publisher
from clicktrail.brokers.jetstream import JetStreamPublisher
from clicktrail.brokers.redis_streams import RedisStreamPublisher, entry_id
from clicktrail.config import load_settings
from clicktrail.domain.errors import InvalidInput
from clicktrail.storage import events


@pytest.mark.parametrize(
    ("target", "field"),
    [
        (StreamTarget("kafka://127.0.0.1:9092"), "stream_url"),
        (StreamTarget("127.0.0.1:4222"), "stream_url"),
        (StreamTarget("nats://127.0.0.1:4222", prefix="a b"), "stream_prefix"),
        (StreamTarget("nats://127.0.0.1:4222", prefix="a.>"), "stream_prefix"),
        (StreamTarget("nats://127.0.0.1:4222", prefix="a..b"), "stream_prefix"),
        (StreamTarget("nats://127.0.0.1:4222", stream="A.B"), "stream_name"),
        (StreamTarget("nats://127.0.0.1:4222", dedup_window_s=0), "stream_dedup_window"),
        (StreamTarget("redis://127.0.0.1:6379/0", maxlen=-1), "stream_maxlen"),
    ],
)
def test_bad_targets_are_named(target: StreamTarget, field: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        check_target(target)
    assert exc.value.field == field
    assert field in str(exc.value)


def test_the_scheme_picks_the_broker() -> None:
    nats_pub = open_publisher(StreamTarget("nats://127.0.0.1:4222", prefix="acme.clicktrail"))
    redis_pub = open_publisher(StreamTarget("redis://127.0.0.1:6379/0"))
    try:
        assert isinstance(nats_pub, JetStreamPublisher)
        assert isinstance(redis_pub, RedisStreamPublisher)
    finally:
        nats_pub.close()
        redis_pub.close()


def test_entry_ids_follow_the_outbox_order() -> None:
    order = [(0, 1), (0, 2), (0, 10), (7, 3), (7, 11), (12, 4)]  # (txid, id) as read
    ids = [tuple(map(int, entry_id(t, i).split("-"))) for t, i in order]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_the_container_wires_the_stream_out(database_url: str, tmp_path: Path) -> None:
    env = {"CLICKTRAIL_DATABASE_URL": database_url, "CLICKTRAIL_DATA_DIR": str(tmp_path)}
    plain = Container(load_settings(env=env))
    jobs, _ = plain.background_jobs()
    assert plain.engine not in events._STREAMED
    assert all(getattr(job, "__self__", None) is None or type(job.__self__).__name__ != "StreamOut"
               for _, job in jobs)  # fmt: skip
    plain.dispose()
    env |= {"CLICKTRAIL_STREAM_URL": "redis://127.0.0.1:6379/0",
            "CLICKTRAIL_STREAM_WORKSPACES": "acme, beta"}  # fmt: skip
    streamed = Container(load_settings(env=env))
    try:
        assert events._STREAMED[streamed.engine] == frozenset({"acme", "beta"})
        jobs, _ = streamed.background_jobs()
        assert (0.2, streamed.stream_worker.kick) in jobs
        assert streamed.stream_worker.workspaces == frozenset({"acme", "beta"})
    finally:
        streamed.dispose()
    bad = Container(load_settings(env=env | {"CLICKTRAIL_STREAM_URL": "amqp://x"}))
    with pytest.raises(InvalidInput, match="stream_url"):
        bad.engine  # noqa: B018  (every process checks the target when it opens the database)
