"""The server adapters' per-read path, compiled with the core (``setup.py``'s ``COMPILED``).

Every socket adapter drives its :class:`~sigma_core.hub.Hub` the same way after each input (bytes,
a socket's end, a timer, an application command): dispatch ``hub.events_received()`` to the
listeners, hand what ``hub.flush(now)`` returns to the sockets, loop until both are empty (a
listener's command lands in the same turn), and keep the adapter's one timer no later than
``hub.next_deadline()``. :class:`ServerPump` is that loop, once, so that a read is one call from
the adapter's Python into compiled code: ``pump.data_received(conn_id, data)``.

It does no I/O of its own: it calls what the adapter gave it — the peers' ``write`` /
``writelines`` (asyncio transports) or the adapter's ``deliver`` (trio), the adapter's ``close``
for a ``CloseAction``, the adapter's ``arm`` for the timer, the ``message`` listeners, and
``dispatch`` for every other event (:func:`sigma_core.api.server_event_dispatcher`: the log
line and the callbacks). Pure Python like the rest of the core when not compiled
(``SIGMA_NO_COMPILE=1``): the same code either way. (It does not import ``sigma_core.api``:
compiled modules are type-checked with what they import, and the API's options name the
optional ``sigma_auth``.)

The timer is re-armed lazily: only when the hub's next deadline comes *earlier* than the time
the adapter's timer is set for. A deadline that moved later (a heartbeat pushed back by a read,
an ack timer already served) leaves the timer alone; when it fires early, ``on_timer`` finds
nothing due and arms it again at the hub's deadline. So a read costs one comparison, never a
``call_at`` and a cancelled handle. The same holds for the history a client's ``$inbox`` Ack
lets go of: the read that carried it releases one slice after its output is written
(``hub.after_write``), and only what is left beyond that slice asks for a timer turn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

from .engine import EngineLink
from .hub import CloseAction, Hub, HubEvent, Session, _client_message
from .serializers import RAW, Serializer, encode_payload

__all__ = ["ServerPump"]


class _Emitter(Protocol):
    """What the pump reads of :class:`sigma_core.api.EventEmitter`."""

    _listeners: dict[str, tuple[Callable[..., Any], ...]]

    def _listener_raised(self, event: str, exc: Exception) -> None: ...


class ServerPump:
    """One server's hub driven for its I/O adapter.

    ``peers`` maps a connection id to the adapter's object for the socket (the adapter adds and
    removes entries). A client's message goes to ``emitter``'s ``message`` listeners as
    ``(session, payload, topic)`` with the RAW serializer; every other event, and a
    message to decode, to ``dispatch(event)``. Output
    goes to ``deliver(peer, chunks, action)`` when given; otherwise the peer's ``write(chunk)``
    (one chunk) or ``writelines(chunks)``, then ``close(peer, action)`` for a ``CloseAction``
    other than ``NONE``. ``arm(when)``: set the adapter's one timer to fire at ``when`` (the
    pump calls it only when ``when`` is earlier than the time set last), then call
    :meth:`on_timer`. ``clock() + clock_offset``: the hub's timebase (the event loop's time;
    sigma_trio passes ``time.perf_counter`` and the offset of trio's default clock, one C call
    where ``trio.current_time`` is three Python frames).
    """

    def __init__(self, hub: Hub, *, emitter: _Emitter, dispatch: Callable[[HubEvent], None],
                 peers: dict[int, Any], link: EngineLink | None,
                 clock: Callable[[], float], arm: Callable[[float], None],
                 close: Callable[[Any, CloseAction], None] | None = None,
                 deliver: Callable[[Any, list[bytes], CloseAction], None] | None = None,
                 serializer: Serializer = RAW, clock_offset: float = 0.0) -> None:
        if (close is None) == (deliver is None):
            raise ValueError("ServerPump needs exactly one of close= and deliver=")
        self.hub = hub
        self._emitter = emitter
        self._dispatch = dispatch
        self._peers = peers
        #: The server's serializer (for :meth:`send_to_client`).
        self._serializer = serializer
        #: It is RAW: payloads pass as they are (no encode or decode).
        self._raw = serializer is RAW
        self._link = link
        self._clock = clock
        self._clock_offset = clock_offset
        self._arm = arm
        self._close = close
        self._deliver = deliver
        #: When the adapter's timer fires (inf: not armed).
        self.armed_at = math.inf
        #: Whether the timer is kept (the adapter is serving); False: never armed.
        self.running = False
        self._busy = False
        self._again = False
        #: The time :meth:`_run` last gave the hub (the read's, the timer's, or a later
        #: pass's; read while ``_busy``): what a listener sends from its callback is sent at
        #: it, as the flush it leaves in is (a pass's events come before its flush).
        self._now = 0.0

    # ------------------------------------------------------------------ inputs

    def data_received(self, conn_id: int, data: bytes | bytearray | memoryview) -> None:
        """Bytes arrived on ``conn_id``: feed the hub, then :meth:`after_core` (its first
        ``flush`` at the read's time: one clock read per read), then ``hub.after_write``: one
        slice of the history this read's ``$inbox`` Acks let go of, its output written first."""
        now = self._clock() + self._clock_offset
        self.hub.receive_data(conn_id, data, now)
        if self._busy:
            self._again = True
            return
        self._run(now, True)

    def on_timer(self) -> None:
        """The adapter's timer fired (it is no longer armed)."""
        when = self.armed_at
        self.armed_at = math.inf
        # The loop may fire a hair early (clock resolution): never let the core see time
        # before the deadline it asked for, or it would ask again at once.
        now = self._clock() + self._clock_offset
        if when != math.inf and now < when:
            now = when
        self.hub.handle_timer(now)
        if self._busy:
            self._again = True
            return
        self._run(now, False)

    def disarmed(self) -> None:
        """The adapter cancelled its timer (stopping): the next :meth:`after_core` while
        ``running`` arms it afresh."""
        self.armed_at = math.inf

    # ------------------------------------------------------------------ the loop

    def after_core(self) -> None:
        """Fire the events' callbacks, hand the output to the sockets, until both are empty;
        then keep the timer. A listener's command that lands here again while this runs
        returns at once: the running call picks up its output, so events keep their order.
        Events go out before the output is written, so what a listener sends in answer leaves
        in the same write as the hub's own output (one write per read for an echo)."""
        if self._busy:
            self._again = True
            return
        self._run(self._clock() + self._clock_offset, False)

    def _run(self, now: float, read: bool) -> None:
        """:meth:`after_core` with its first ``flush`` at ``now``; after a ``read``, once the
        output is written, ``hub.after_write(now)`` (before the timer is kept: a release left
        for a timer turn is in ``next_deadline``).

        One pass per read when nothing is left: the events are dispatched before the flush,
        so a listener's output (its command re-entering :meth:`after_core` only sets
        ``_again``) leaves in that flush; another pass runs only if the hub holds events
        again (queued by a command or by the flush) or something re-entered during the
        writes. With an engine link the loop also goes round while there was output, as the
        link may have more to hand over."""
        hub = self.hub
        peers = self._peers
        link = self._link
        deliver = self._deliver
        self._busy = True
        self._now = now
        try:
            first = True
            while True:
                if link is not None:
                    link.pump()
                events = hub._take_events()
                for event in events:
                    if isinstance(event, tuple):  # a client's message (hub.MessageFields)
                        session, seq, topic, payload, timestamp_ms = event
                        if self._raw:
                            self._message(session, payload, topic)
                        else:
                            self._dispatch(_client_message(session, seq, topic, payload,
                                                           timestamp_ms))
                    else:
                        self._dispatch(event)
                if not first:
                    now = self._now = self._clock() + self._clock_offset
                first = False
                # What the callbacks above sent is in this flush: only a re-entry from here on
                # (during the writes) asks for another pass.
                self._again = False
                out = hub.flush(now)
                for conn_id, chunks, action in out:
                    peer = peers.get(conn_id)
                    if peer is None:
                        continue
                    if deliver is not None:
                        deliver(peer, chunks, action)
                        continue
                    if chunks:
                        if len(chunks) == 1:
                            peer.write(chunks[0])
                        else:
                            peer.writelines(chunks)
                    if action:
                        close = self._close
                        assert close is not None
                        close(peer, action)
                if not self._again and not hub._events and (link is None or not out):
                    break
        finally:
            self._busy = False
            self._again = False
        if read and hub._releasing:
            hub.after_write(now)
        if self.running:
            deadline = hub.next_deadline()
            if deadline is not None and deadline < self.armed_at:
                self.armed_at = deadline
                self._arm(deadline)

    # ------------------------------------------------------------------ commands

    def send_to_client(self, client: object, data: Any) -> bool:
        """:meth:`sigma_core.api.ServerCommands.send_to_client` of a started server, compiled:
        the same checks, errors and result (tests/test_pump.py holds the two equal). The socket
        adapters bind it over the method at start when it is not overridden: an echo's answer
        is then one call from the application's Python, not a Python frame more per message.

        Raises:
            LocalProtocolError: the serializer cannot encode ``data``, or the message is larger
                than ``max_message_size`` allows.
        """
        hub = self.hub
        if isinstance(client, Session):
            session_id = client.id
        elif isinstance(client, str):
            session_id = client
        else:
            session_id = client.id  # type: ignore[attr-defined]  # the method's AttributeError
        # (One lookup: the session goes on to the hub, not its id to be looked up again.)
        session = hub.get_session(session_id)
        if session is None:
            return False
        if self._raw and type(data) is bytes:
            payload: bytes | bytearray | memoryview = data
        else:
            payload = encode_payload(self._serializer, data)
        if self._busy:
            # A listener's answer, inside a pass: the time the pass gave the hub, not a clock
            # read per message (uvloop's clock counts whole milliseconds: mostly the same).
            hub._send_inbox(session, payload, self._now)
            self._again = True
            return True
        hub._send_inbox(session, payload, self._clock() + self._clock_offset)
        self.after_core()
        return True

    def _message(self, session: object, payload: bytes, topic: str) -> None:
        """``message(session, payload, topic)`` to every listener, as ``EventEmitter.emit``
        calls them (a listener that raises is reported the emitter's way; the others run)."""
        listeners = self._emitter._listeners.get("message")
        if not listeners:
            return
        for listener in listeners:
            try:
                listener(session, payload, topic)
            except Exception as exc:  # a user callback: report, keep going
                self._emitter._listener_raised("message", exc)
