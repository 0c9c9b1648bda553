"""``kill -9`` of a real ``interop serve`` in the middle of an MLLP stream, then restart and resend of every
unacknowledged message: each acknowledged message stored, every message stored exactly once, none lost."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from interop.ingest.mllp import ack_control_id, send
from interop.store import open_repository
from tests.ingest_messages import dispense

pytestmark = pytest.mark.live


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(db_url: str, mllp_port: int, tmp: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, INTEROP_AUTH_SECRET="fault-test-secret-0123456789abcdef", INTEROP_MLLP_HOST="127.0.0.1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "interop", "serve", "--port", str(_free_port()), "--mllp-port", str(mllp_port),
         "--db", db_url],
        env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", mllp_port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"interop serve exited with {proc.returncode}") from None
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the MLLP listener did not come up")


def test_kill_9_mid_stream_loses_nothing_and_stores_nothing_twice(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    port = _free_port()
    messages = {f"C{n}-1": dispense(n) for n in range(1500)}
    observer = open_repository(db_url)

    def stored() -> int:
        return observer.search("MedicationDispense", [("_count", "0"), ("_total", "accurate")]).total or 0

    server = _start(db_url, port, tmp_path)
    acked: list[bytes] = []
    sender = threading.Thread(target=lambda: acked.extend(send("127.0.0.1", port, list(messages.values()), window=50)))
    sender.start()
    deadline = time.monotonic() + 120
    while stored() < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.send_signal(signal.SIGKILL)
    server.wait(30)
    sender.join(60)
    acked_ids = {ack_control_id(a) for a in acked}
    assert 0 < len(acked_ids) < len(messages), "the kill did not land mid-stream"
    at_kill = stored()
    assert at_kill >= len(acked_ids), "an acknowledged message was not in the store"

    server = _start(db_url, port, tmp_path)
    try:
        rest = [m for cid, m in messages.items() if cid not in acked_ids]
        resent = send("127.0.0.1", port, rest, window=50)
        assert len(resent) == len(rest)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(30)
    assert stored() == len(messages), "a message was lost or stored twice"
    observer.close()
