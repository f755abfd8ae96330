"""The outbox provider: appends each outgoing SMS as one JSON line to a file.

This is how clicktrail hands wrapped messages to a sender of your own, and what tests send
through. Each line: ``{"message_id", "to", "body", "encoding", "segments", "queued_at"}``.
A batch is written with one `write` and fsynced before it counts as sent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from clicktrail.domain.status import Status
from clicktrail.services.ports import OutgoingSms, SendResult


class OutboxProvider:
    """Writes messages to a JSON-lines file instead of a carrier."""

    name = "outbox"
    # Sending jobs (services/sending/): `reconcile` reads this file, so it knows every message
    # the outbox took and a message in doubt can be written again safely; and no rate limit by
    # default: a file is not a carrier (the sender reading it keeps its own pace).
    reconcile_complete = True
    default_rate = 0.0

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, batch: Sequence[OutgoingSms]) -> list[SendResult]:
        """Append `batch` to the outbox file; every message is `sent` once it is on disk."""
        if not batch:
            return []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        data = "".join(
            json.dumps(
                {
                    "message_id": m.message_id,
                    "to": m.to,
                    "body": m.body,
                    "encoding": m.encoding,
                    "segments": m.segments,
                    "written_at": stamp,
                },
                ensure_ascii=False,
            )
            + "\n"
            for m in batch
        ).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        return [SendResult(m.message_id, Status.SENT, m.message_id) for m in batch]

    def reconcile(self, batch: Sequence[OutgoingSms]) -> list[SendResult]:
        """Return `sent` results for the messages of `batch` already in the outbox file."""
        wanted = {m.message_id for m in batch}
        found: set[str] = set()
        if wanted and self.path.exists():
            with self.path.open("rb") as f:
                for line in f:
                    try:
                        mid = json.loads(line).get("message_id")
                    except ValueError:
                        continue  # a torn last line: that batch was never fsynced as sent
                    if mid in wanted:
                        found.add(mid)
        return [SendResult(mid, Status.SENT, mid) for mid in sorted(found)]
