"""A TCP proxy for tests: forwards 127.0.0.1:<port> to an upstream and can cut it off.

`block()` closes every forwarded connection at once and from then on closes each new one as
soon as it is accepted (the listening socket stays open, so the port is never taken by anyone
else): a database that was stopped. `block(drop=True)` is a network partition instead (a
firewall dropping packets, a hung server): nothing is forwarded any more, in either direction,
and new connections wait unanswered, but no connection is closed. `unblock()` forwards again
(after a drop, every held connection carries on where it stopped). One background thread runs a `selectors` loop; only that
thread touches sockets, the public methods send it commands and wait for them to be done.

Half-closes are forwarded (EOF from one side becomes ``shutdown(SHUT_WR)`` on the other once
everything read before it was delivered); a reset or any other socket error closes the pair.
Reading from one side pauses while the other side's send buffer is full (back-pressure).
"""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import threading
from collections.abc import Callable

_CHUNK = 65536
_MAX_PENDING = 1 << 20  # bytes buffered towards one side before reading from the other pauses


class _End:
    """One socket of a forwarded connection and the bytes waiting to be sent to it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.peer: _End = self
        self.outbuf = bytearray()
        self.eof = False  # EOF read from this socket
        self.shut = False  # shutdown(SHUT_WR) done on this socket
        self.mask = 0  # events registered with the selector


class TcpProxy:
    """Forward ``127.0.0.1:self.port`` to ``upstream``; `block()`/`unblock()` cut it off."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.accepted = 0  # connections accepted and forwarded
        self.refused = 0  # connections accepted while blocked, closed at once
        self.cut = 0  # forwarded connections closed by block()
        self._blocked = False
        self._dropping = False
        self._sel = selectors.DefaultSelector()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._commands: queue.Queue[tuple[Callable[[], None], threading.Event]] = queue.Queue()
        self._ends: set[_End] = set()
        self._running = True
        self._error: BaseException | None = None
        self._sel.register(self._listener, selectors.EVENT_READ, "listener")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._loop, name="tcp-proxy", daemon=True)
        self._thread.start()

    # -- public API (any thread) ---------------------------------------------------------------

    @property
    def blocked(self) -> bool:
        return self._blocked

    @property
    def open_connections(self) -> int:
        return len(self._ends) // 2

    def block(self, *, drop: bool = False) -> None:
        """Close every forwarded connection now; close new ones as soon as they arrive.

        With `drop`, close nothing: stop forwarding and leave new connections unanswered.
        """
        self._call(self._do_drop if drop else self._do_block)

    def unblock(self) -> None:
        """Forward new connections again."""
        self._call(self._do_unblock)

    def close(self) -> None:
        """Close every socket and stop the thread (idempotent)."""
        if self._thread.is_alive():
            self._call(self._do_stop)
            self._thread.join(timeout=10)
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()
        self._sel.close()
        if self._error is not None:
            raise RuntimeError("the proxy thread failed") from self._error

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn: Callable[[], None]) -> None:
        if not self._thread.is_alive():
            raise RuntimeError("the proxy thread is not running") from self._error
        done = threading.Event()
        self._commands.put((fn, done))
        self._wake_w.send(b"x")
        if not done.wait(timeout=10):
            raise RuntimeError("the proxy thread did not answer within 10 s")

    # -- loop thread ---------------------------------------------------------------------------

    def _loop(self) -> None:
        try:
            while self._running:
                for key, events in self._sel.select(timeout=1.0):
                    if key.data == "listener":
                        self._accept()
                    elif key.data == "wake":
                        self._run_commands()
                    else:
                        end: _End = key.data
                        if end not in self._ends or self._dropping:
                            continue  # closed, or paused, by an earlier event of this round
                        if events & selectors.EVENT_WRITE:
                            self._flush(end)
                        if events & selectors.EVENT_READ and end in self._ends:
                            self._read(end)
        except BaseException as exc:  # surfaced by close()
            self._error = exc
        finally:
            for end in list(self._ends):
                self._close_pair(end)
            # Release anybody waiting on a command that will never run.
            while True:
                try:
                    _fn, done = self._commands.get_nowait()
                except queue.Empty:
                    break
                done.set()

    def _run_commands(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass
        while True:
            try:
                fn, done = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                fn()
            finally:
                done.set()

    def _do_block(self) -> None:
        self._do_unblock()
        self._blocked = True
        for end in list(self._ends):
            if end in self._ends:
                self.cut += 1
                self._close_pair(end)

    def _do_drop(self) -> None:
        self._do_unblock()
        self._dropping = True
        # New connections stay in the listen backlog: the kernel completes the handshake, and
        # then nothing answers.
        self._sel.unregister(self._listener)
        for end in self._ends:
            self._update(end)

    def _do_unblock(self) -> None:
        self._blocked = False
        if self._dropping:
            self._dropping = False
            self._sel.register(self._listener, selectors.EVENT_READ, "listener")
            for end in self._ends:
                self._update(end)

    def _do_stop(self) -> None:
        self._running = False

    def _accept(self) -> None:
        while not self._dropping:
            try:
                client, _addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            if self._blocked:
                self.refused += 1
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()  # upstream down: the client sees the connection closed
                continue
            self.accepted += 1
            a, b = _End(client), _End(upstream)
            a.peer, b.peer = b, a
            for end in (a, b):
                end.sock.setblocking(False)
                end.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._ends.add(end)
                self._update(end)

    def _read(self, end: _End) -> None:
        peer = end.peer
        try:
            data = end.sock.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close_pair(end)
            return
        if data:
            peer.outbuf += data
            self._flush(peer)
        else:
            end.eof = True
            self._flush(peer)  # forwards the EOF once the peer's buffer is empty
        if end in self._ends:
            self._update(end)

    def _flush(self, end: _End) -> None:
        """Send what is buffered for `end`; forward EOF after it; close the pair when done."""
        try:
            while end.outbuf:
                sent = end.sock.send(end.outbuf)
                del end.outbuf[:sent]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close_pair(end)
            return
        if not end.outbuf and end.peer.eof and not end.shut:
            end.shut = True
            try:
                end.sock.shutdown(socket.SHUT_WR)
            except OSError:
                self._close_pair(end)
                return
        if end.shut and end.peer.shut:
            self._close_pair(end)  # both directions finished
            return
        self._update(end)
        self._update(end.peer)

    def _update(self, end: _End) -> None:
        mask = 0
        if not self._dropping:  # dropping: forward nothing
            if not end.eof and len(end.peer.outbuf) < _MAX_PENDING:
                mask |= selectors.EVENT_READ
            if end.outbuf:
                mask |= selectors.EVENT_WRITE
        if mask == end.mask:
            return
        if end.mask == 0:
            self._sel.register(end.sock, mask, end)
        elif mask == 0:
            self._sel.unregister(end.sock)
        else:
            self._sel.modify(end.sock, mask, end)
        end.mask = mask

    def _close_pair(self, end: _End) -> None:
        for e in (end, end.peer):
            if e not in self._ends:
                continue
            self._ends.discard(e)
            if e.mask:
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(e.sock)
                e.mask = 0
            e.sock.close()
