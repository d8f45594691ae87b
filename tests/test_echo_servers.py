"""Both plain RFC 6455 echo servers survive a client whose single read holds a message and a
frame that fails the connection (Autobahn case 3.2 once killed the trio one), and keep serving.

Plain sockets and the core's own ClientConnection: no framework needed on the client side.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from sigma_core.connection import ClientConnection, ConnectionConfig, RawMessage
from sigma_core.websocket import WebSocketConfig

PLAIN = ConnectionConfig(envelope=False, websocket=WebSocketConfig.plain(), heartbeat_interval=0)


def _start(module: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-m", module, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r":(\d+)/", line)
    assert match, line
    return proc, int(match.group(1))


def _open(port: int) -> tuple[socket.socket, ClientConnection]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn = ClientConnection(host=f"127.0.0.1:{port}", config=PLAIN, now=time.monotonic())
    sock.sendall(b"".join(conn.data_to_send()))
    while conn.state.value != "open":
        conn.receive_data(sock.recv(65536), time.monotonic())
    return sock, conn


def _echo(sock: socket.socket, conn: ClientConnection, message: bytes | str) -> bytes | str:
    conn.send_raw(message)
    sock.sendall(b"".join(conn.data_to_send()))
    while True:
        conn.receive_data(sock.recv(65536), time.monotonic())
        for event in conn.events_received():
            if isinstance(event, RawMessage):
                return event.data


@pytest.mark.parametrize("module", ["sigma_asyncio.echo", "sigma_trio.echo"])
def test_message_and_bad_frame_in_one_read_do_not_kill_the_server(module: str) -> None:
    proc, port = _start(module)
    try:
        sock, conn = _open(port)
        conn.send_raw(b"hello")
        good = b"".join(conn.data_to_send())
        # A masked binary frame with RSV1 set: a protocol error (RFC 6455 §5.2), same write.
        bad = bytes([0xC2, 0x80 | 1]) + b"\x00\x00\x00\x00" + b"x"
        sock.sendall(good + bad)
        sock.settimeout(5)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        sock.close()
        # The echo first, then the 1002 close frame (RFC 6455 §7.1.7; Autobahn 3.2 strict).
        assert received.startswith(b"\x82\x05hello\x88")
        assert received[8:12] == b"\x1f\x03\xeaR"
        # The server is still up and echoing on a new connection.
        sock2, conn2 = _open(port)
        assert _echo(sock2, conn2, "still here") == "still here"
        sock2.close()
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=5)
        assert proc.stdout is not None
        proc.stdout.close()
    assert code == 0
