"""Process leases: one process at a time runs a job, holding a lease it renews while sending.
An owner id names the host and process, so a lease held by a dead process of this host can be
taken over at once instead of waiting for it to expire."""

from __future__ import annotations

import os
import socket
import uuid


def new_owner() -> str:
    """Return a lease owner id for this process: ``host:pid:nonce``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_dead(owner: str) -> bool:
    """Return True when `owner` names a process of this host that no longer runs (its lease can
    be taken over at once, without waiting for it to expire)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
