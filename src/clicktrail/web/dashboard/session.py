"""Dashboard sessions: a workspace API key logs in; a signed cookie remembers it.

The cookie holds no secret a client could reuse elsewhere: the workspace id, the stored hash of
the key that logged in (an API call needs the key itself, not its hash), an expiry and the CSRF
token of the session, signed with HMAC-SHA256 under a server secret. Every request looks the hash
up again, so revoking the key ends its dashboard sessions at once.

The secret lives in a file under the data folder, created on first use (0600) by whichever
process gets there first: several workers on one machine share it, and sessions survive restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

SESSION_COOKIE = "ct_session"
LOGIN_COOKIE = "ct_login"
SESSION_SECONDS = 12 * 3600
_VERSION = "v1"


def load_secret(path: Path) -> bytes:
    """Return the signing secret stored at `path`, creating it (32 random bytes) if missing.

    Creation is atomic (write a temporary file, then hard-link it into place), so concurrent
    workers agree on one secret. Raises `OSError` when the folder is not writable.
    """
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(32) + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process won the race: use its secret
    finally:
        tmp.unlink()
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in dashboard session (what the cookie carries, once verified)."""

    workspace: str  # public id
    key_hash: str
    expires: int  # seconds since epoch
    csrf: str


class Signer:
    """Signs and verifies session cookies and login-form tokens under one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the dashboard secret must be at least 16 bytes")
        self._key = hashlib.sha256(b"clicktrail dashboard session\0" + secret).digest()

    def _mac(self, purpose: str, data: str) -> str:
        msg = f"{purpose}\0{data}".encode()
        return _b64(hmac.new(self._key, msg, hashlib.sha256).digest())

    def new_session(self, workspace: str, key_hash: str, now: float | None = None) -> Session:
        """Return a fresh session for the workspace, valid for `SESSION_SECONDS`."""
        now = time.time() if now is None else now
        return Session(workspace, key_hash, int(now) + SESSION_SECONDS, secrets.token_urlsafe(24))

    def dump(self, session: Session) -> str:
        """Return the cookie value of `session`."""
        payload = _b64(
            json.dumps(
                {"w": session.workspace, "k": session.key_hash, "e": session.expires,
                 "c": session.csrf},
                separators=(",", ":"),
            ).encode()
        )  # fmt: skip
        return f"{_VERSION}.{payload}.{self._mac('session', payload)}"

    def load(self, value: str | None, now: float | None = None) -> Session | None:
        """Return the session of a cookie value; None when absent, forged, malformed or expired."""
        if not value or value.count(".") != 2:
            return None
        version, payload, mac = value.split(".")
        if version != _VERSION or not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(str(data["w"]), str(data["k"]), int(data["e"]), str(data["c"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires <= (time.time() if now is None else now):
            return None
        return session

    def login_token(self, nonce: str) -> str:
        """Return the hidden form value that proves the login form came from this server.

        `nonce` is the random value of the login cookie (double-submit, bound by the MAC).
        """
        return self._mac("login", nonce)

    def check_login_token(self, nonce: str | None, token: str | None) -> bool:
        """Return whether `token` is the login token of `nonce`."""
        return bool(nonce and token) and hmac.compare_digest(
            str(token), self.login_token(str(nonce))
        )
