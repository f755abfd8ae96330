"""The click spool: written by a thread, drained on close, replayed once after a crash."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import orjson
import pytest

from clicktrail.services.ports import ClickRecord
from clicktrail.storage.clicklog import ClickLog
from factories import Repos


def rec(i: int, method: str = "GET") -> ClickRecord:
    return ClickRecord(
        f"click-{i:04d}", "AAAAAAAAA", 1, 2, 3, 4, 1_000 + i, method, "198.51.100.7", "UA é",
        {"accept": "text/html", "sec-fetch-mode": "navigate"},
    )  # fmt: skip


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def segments(spool: Path) -> list[Path]:
    return sorted(spool.glob("clicks-*.jsonl"))


def _read(path: Path) -> bytes:
    # The writer thread may delete a segment between the listing and the read.
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


def dead_segment(tmp_path: Path, records: list[ClickRecord]) -> bytes:
    """Return the bytes of a real segment holding `records`, as a crashed process leaves it."""
    spool = tmp_path / "other-spool"
    log = ClickLog(spool, lambda rs: len(list(rs)), flush_interval=3600)
    log.start()
    try:
        for r in records:
            log.record(r)
        (seg,) = segments(spool)
        data = seg.read_bytes()
    finally:
        log.close()
    assert data.count(b"\n") == len(records)
    return data


def test_writer_thread_stores_records_in_the_database(store: Repos, tmp_path: Path) -> None:
    log = ClickLog(tmp_path / "spool", store.clicks.insert_clicks, flush_interval=0.01)
    log.start()
    try:
        for i in range(3):
            log.record(rec(i))
        wait_for(lambda: store.clicks.count_clicks() == 3)
    finally:
        log.close()
    assert log.written == 3
    assert segments(tmp_path / "spool") == []


def test_record_before_start_is_refused(tmp_path: Path) -> None:
    log = ClickLog(tmp_path, lambda rs: 0)
    with pytest.raises(AssertionError, match="start"):
        log.record(rec(1))


def test_close_drains_everything(store: Repos, tmp_path: Path) -> None:
    log = ClickLog(tmp_path / "spool", store.clicks.insert_clicks, flush_interval=3600)
    log.start()
    for i in range(250):
        log.record(rec(i))
    assert store.clicks.count_clicks() == 0
    log.close()
    assert store.clicks.count_clicks() == 250
    assert segments(tmp_path / "spool") == []


def test_flush_max_wakes_the_writer_early(tmp_path: Path) -> None:
    got: list[ClickRecord] = []
    log = ClickLog(tmp_path, lambda rs: got.extend(rs) or 0, flush_interval=3600, flush_max=5)
    log.start()
    try:
        for i in range(5):
            log.record(rec(i))
        wait_for(lambda: len(got) == 5)
    finally:
        log.close()
    assert [r.click_id for r in got] == [f"click-{i:04d}" for i in range(5)]


def test_segments_of_a_dead_process_are_replayed_exactly_once(store: Repos, tmp_path: Path) -> None:
    records = [rec(i) for i in range(3)]
    data = dead_segment(tmp_path, records)
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "clicks-99999-00000001.jsonl").write_bytes(data)

    log = ClickLog(spool, store.clicks.insert_clicks)
    assert log.start() == 3
    log.close()
    assert store.clicks.count_clicks() == 3
    assert segments(spool) == []

    # The same segment again (e.g. a copy left behind): replayed, but no click doubles.
    (spool / "clicks-99998-00000001.jsonl").write_bytes(data)
    (spool / "clicks-99999-00000002.jsonl").write_bytes(data)
    log = ClickLog(spool, store.clicks.insert_clicks)
    log.start()
    log.close()
    assert store.clicks.count_clicks() == 3
    assert segments(spool) == []


def test_torn_last_line_is_skipped(store: Repos, tmp_path: Path) -> None:
    data = dead_segment(tmp_path, [rec(1), rec(2)])
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "clicks-4242-00000001.jsonl").write_bytes(data + data.splitlines()[0][:25])
    log = ClickLog(spool, store.clicks.insert_clicks)
    assert log.start() == 2
    log.close()
    assert store.clicks.count_clicks() == 2


def test_a_segment_held_by_a_live_writer_is_not_taken(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    got: list[ClickRecord] = []
    live = ClickLog(spool, lambda rs: got.extend(rs) or 0, flush_interval=3600)
    live.start()
    try:
        live.record(rec(1))
        other = ClickLog(spool, lambda rs: got.extend(rs) or 0)
        assert other.recover() == 0
        assert got == []
    finally:
        live.close()
    assert [r.click_id for r in got] == ["click-0001"]


class Flaky:
    """A database write that fails while `down` is set, else stores through `write`."""

    def __init__(self, write: Callable[[Iterable[ClickRecord]], int]) -> None:
        self.write = write
        self.down = True
        self.failed = threading.Event()

    def __call__(self, records: Iterable[ClickRecord]) -> int:
        if self.down:
            self.failed.set()
            raise ConnectionError("database is away")
        return self.write(records)


def test_records_are_kept_while_the_database_fails_and_written_once_it_works(
    store: Repos, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = tmp_path / "spool"
    flaky = Flaky(store.clicks.insert_clicks)
    log = ClickLog(spool, flaky, flush_interval=0.01)
    log.start()
    try:
        for i in range(3):
            log.record(rec(i))
        assert flaky.failed.wait(5)
        # Still durable on disk, in exactly one place (once the failed batch is re-spooled).
        deadline = time.monotonic() + 5
        while True:
            on_disk = b"".join(_read(p) for p in segments(spool))
            if on_disk.count(b"\n") == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert on_disk.count(b"\n") == 3
        flaky.down = False
        for i in range(3, 5):
            log.record(rec(i))
    finally:
        log.close()
    assert store.clicks.count_clicks() == 5
    assert segments(spool) == []
    assert "writing clicks to the database failed" in caplog.text


def test_records_left_after_a_failed_final_flush_are_replayed_by_the_next_start(
    store: Repos, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    flaky = Flaky(store.clicks.insert_clicks)
    log = ClickLog(spool, flaky, flush_interval=3600)
    log.start()
    log.record(rec(1))
    log.record(rec(2))
    log.close()  # logs the failure, keeps the segment, does not raise
    # The process would exit here (its lock dies with it); copy what it left, as a restart sees.
    restart = tmp_path / "restart"
    restart.mkdir()
    for p in segments(spool):
        shutil.copy(p, restart / p.name)
    new = ClickLog(restart, store.clicks.insert_clicks)
    assert new.start() == 2
    new.close()
    assert store.clicks.count_clicks() == 2


def test_close_keeps_the_segment_without_raising_when_the_database_is_down(
    tmp_path: Path,
) -> None:
    log = ClickLog(tmp_path, Flaky(lambda rs: 0), flush_interval=3600)
    log.start()
    log.record(rec(1))
    log.close()
    assert len(segments(tmp_path)) == 1


def test_appended_clicks_are_durable_only_after_sync_and_all_at_once(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    written: list[int] = []
    log = ClickLog(spool, lambda rs: written.append(len(list(rs))) or 0, flush_interval=3600)
    log.start()
    try:
        (seg,) = segments(spool)
        for i in range(5):
            log.append(rec(i))
        assert seg.read_bytes() == b""  # kept in memory: not durable yet
        log.sync()
        lines = seg.read_bytes().splitlines()
        assert [ClickRecord(*orjson.loads(x)).click_id for x in lines] == [
            f"click-{i:04d}" for i in range(5)
        ]
        log.sync()  # nothing appended since: no write
        assert len(seg.read_bytes().splitlines()) == 5
        log.append(rec(5))
    finally:
        log.close()  # what was appended and not synced is written too, then drained
    assert sum(written) == 6


def test_a_failed_sync_raises_and_keeps_no_half_written_clicks(tmp_path: Path) -> None:
    log = ClickLog(tmp_path / "spool", lambda rs: len(list(rs)), flush_interval=3600)
    log.start()
    try:
        seg = log._segment
        assert seg is not None
        log.append(rec(1))
        real_fd = seg.fd
        seg.fd = os.open(os.devnull, os.O_RDONLY)  # writes fail as on a broken disk
        try:
            with pytest.raises(OSError):
                log.sync()
        finally:
            os.close(seg.fd)
            seg.fd = real_fd
        assert seg.lines == []  # the failed requests were never recorded (nor answered)
        log.sync()
        assert seg.path.read_bytes() == b""
    finally:
        log.close()


def test_a_partial_spool_write_is_cut_off_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk can take part of a write: the torn part must not stay in the segment, or
    # the next line would be glued to it and lost at recovery.
    from clicktrail.storage import clicklog

    log = ClickLog(tmp_path / "spool", lambda rs: len(list(rs)), flush_interval=3600)
    log.start()
    try:
        seg = log._segment
        assert seg is not None
        log.append(rec(1))
        log.sync()
        size = seg.path.stat().st_size
        real_write = os.write
        monkeypatch.setattr(clicklog.os, "write", lambda fd, data: real_write(fd, data[:10]))
        log.append(rec(2))
        with pytest.raises(OSError, match="short write"):
            log.sync()
        with pytest.raises(OSError, match="short write"):
            log.record(rec(3))
        monkeypatch.setattr(clicklog.os, "write", real_write)
        assert seg.path.stat().st_size == size
        log.append(rec(4))
        log.sync()
        ids = [ClickRecord(*orjson.loads(x)).click_id for x in seg.path.read_bytes().splitlines()]
        assert ids == ["click-0001", "click-0004"]
    finally:
        log.close()


def test_a_dead_segment_is_replayed_in_slices_of_flush_max(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "clicks-1-00000001.jsonl").write_bytes(
        dead_segment(tmp_path, [rec(i) for i in range(25)])
    )
    sizes: list[int] = []
    log = ClickLog(spool, lambda rs: sizes.append(len(list(rs))) or 0, flush_max=10)
    assert log.start() == 25
    log.close()
    assert sizes == [10, 10, 5]
