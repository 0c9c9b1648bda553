"""``kill -9`` of a real ``interop serve`` in the middle of an MLLP stream, then restart and resend of every
unacknowledged message: each acknowledged message stored, every message stored exactly once, none lost."""

from __future__ import annotations

import contextlib
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


def _serve(tmp: Path, wait_port: int, *args: str) -> subprocess.Popen[bytes]:
    """``interop serve ARGS`` in a subprocess, returned once ``wait_port`` accepts connections."""
    env = dict(os.environ, INTEROP_AUTH_SECRET="fault-test-secret-0123456789abcdef", INTEROP_MLLP_HOST="127.0.0.1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "interop", "serve", *args], env=env, cwd=tmp,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", wait_port), timeout=1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"interop serve exited with {proc.returncode}") from None
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"interop serve did not listen on {wait_port}")


def _start(db_url: str, mllp_port: int, tmp: Path) -> subprocess.Popen[bytes]:
    return _serve(tmp, mllp_port, "--port", str(_free_port()), "--mllp-port", str(mllp_port), "--db", db_url)


def test_kill_9_mid_stream_loses_nothing_and_stores_nothing_twice(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    port = _free_port()
    messages = {f"C{n}-1": dispense(n) for n in range(1500)}
    observer = open_repository(db_url)

    def stored() -> int:
        return observer.search("MedicationDispense", [("_count", "0"), ("_total", "accurate")]).total or 0

    server = _start(db_url, port, tmp_path)
    acked: list[bytes] = []
    sender = threading.Thread(target=send, args=("127.0.0.1", port, list(messages.values())),
                              kwargs={"window": 50, "received": acked})
    sender.start()
    deadline = time.monotonic() + 120
    while len(acked) < 100 and time.monotonic() < deadline:  # kill once the stream is well under way
        time.sleep(0.01)
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


def _start_api(db_url: str, port: int, tmp: Path) -> subprocess.Popen[bytes]:
    return _serve(tmp, port, "--port", str(port), "--mllp-port", "0", "--db", db_url, "--insecure-dev")


def test_kill_9_during_a_transaction_import_leaves_all_or_nothing(tmp_path: Path) -> None:
    import httpx

    db_url = f"sqlite:///{tmp_path / 'store.db'}"
    size = 3000
    for attempt, delay in enumerate((0.15, 0.4, 0.8)):
        marker = f"batch-{attempt}"
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Patient", "identifier": [{"system": "urn:test:kill", "value": f"{marker}-{i}"}],
                          "name": [{"family": marker}]},
             "request": {"method": "POST", "url": "Patient"}} for i in range(size)]}
        port = _free_port()
        server = _start_api(db_url, port, tmp_path)

        def post(body: dict[str, object] = bundle, p: int = port) -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server is killed under the request
                httpx.post(f"http://127.0.0.1:{p}/fhir", json=body, timeout=60,
                           headers={"Content-Type": "application/fhir+json"})

        poster = threading.Thread(target=post)
        poster.start()
        time.sleep(delay)
        server.send_signal(signal.SIGKILL)
        server.wait(30)
        poster.join(60)
        repo = open_repository(db_url)  # reopening runs SQLite's recovery of the interrupted write
        found = repo.search("Patient", [("family:exact", marker), ("_count", "0"), ("_total", "accurate")]).total
        repo.close()
        assert found in (0, size), f"a killed transaction left {found} of {size} resources"
    server = _start_api(db_url, _free_port(), tmp_path)  # and the store still serves after all that
    server.send_signal(signal.SIGKILL)
    server.wait(30)
