"""A pharmacy claims switch simulator for the tests: a real HTTP server on 127.0.0.1 answering D.0 with the codec.

It adjudicates B1s (reject 79 for a short days supply without a sync 420-DK; a paid answer otherwise, with the
copay prorated or not), answers a repeat of a paid B1 with 112-AN D and the original result, approves a B2 of
a paid claim, can stall its first answers past the client's timeout, and counts what it billed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from adapters.telecom import ResponseHeader, Segment, Transaction, Transmission, parse, serialize

TOKEN = "simulator-token"
SYNC_CODES = {"47", "61", "48"}


@dataclass
class SwitchState:
    """What the simulator was sent and what it billed; the knobs a test turns."""

    copay: Decimal = Decimal("47.00")
    month_days: int = 30
    prorate: bool = True
    stall_first: int = 0
    stall_seconds: float = 1.0
    received: list[bytes] = field(default_factory=list)
    paid: dict[tuple[str, str, str], Transaction] = field(default_factory=dict)
    billed: int = 0
    reversed: set[tuple[str, str, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _answer(state: SwitchState, data: bytes) -> bytes:
    request = parse(data)
    header = request.header
    code = header.transaction_code
    claim = request.transactions[0].segment("07")
    assert claim is not None
    rx = claim.get("D2") or ""
    key = (header.provider_id, rx, header.date_of_service)
    echo = Segment("22", [("EM", "1"), ("D2", rx)])
    if code == "B2":
        if key in state.reversed:
            transaction = Transaction([Segment("21", [("AN", "S")]), echo])
        elif key in state.paid:
            state.reversed.add(key)
            del state.paid[key]
            transaction = Transaction([Segment("21", [("AN", "A")]), echo])
        else:
            transaction = Transaction([Segment("21", [("AN", "R"), ("FA", "1"), ("FB", "87")]), echo])
    elif key in state.paid:
        original = state.paid[key]
        status = original.segments[0]
        duplicate = Segment("21", [("AN", "D"), *[(f, v) for f, v in status.fields if f != "AN"]])
        transaction = Transaction([duplicate, *original.segments[1:]])
    else:
        transaction = _adjudicate(state, request, key)
    response = Transmission(ResponseHeader(code, "A", header.provider_id, header.date_of_service), [], [transaction])
    return serialize(response)


def _adjudicate(state: SwitchState, request: Transmission, key: tuple[str, str, str]) -> Transaction:
    claim = request.transactions[0].segment("07")
    pricing = request.transactions[0].segment("11")
    assert claim is not None and pricing is not None
    days = claim.number("D5") or 0
    echo = Segment("22", [("EM", "1"), ("D2", key[1])])
    if days < state.month_days and not set(claim.get_all("DK")) & SYNC_CODES:
        return Transaction([Segment("21", [("AN", "R"), ("FA", "1"), ("FB", "79")]), echo])
    ingredient = pricing.money("D9") or Decimal(0)
    fee = pricing.money("DC") or Decimal(0)
    share = state.copay * min(days, state.month_days) / state.month_days if state.prorate else state.copay
    pay = min(share.quantize(Decimal("0.01"), ROUND_HALF_UP), ingredient + fee)
    transaction = Transaction([
        Segment("21", [("AN", "P"), ("F3", f"SIM{len(state.paid) + state.billed + 1:05d}")]),
        echo,
        Segment("23", [("F5", pay), ("F6", ingredient), ("F7", fee), ("F9", ingredient + fee - pay), ("FI", pay)]),
    ])
    state.paid[key] = transaction
    state.billed += 1
    return transaction


class _Handler(BaseHTTPRequestHandler):
    state: SwitchState

    def do_POST(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_response(401)
            self.end_headers()
            return
        if self.headers.get("Content-Type") != "application/octet-stream":
            self.send_response(415)
            self.end_headers()
            return
        data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.state.lock:
            self.state.received.append(data)
            stall = len(self.state.received) <= self.state.stall_first
            body = _answer(self.state, data)
        if stall:
            time.sleep(self.state.stall_seconds)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            return

    def log_message(self, format: str, *args: object) -> None:
        return


@contextmanager
def running_switch(state: SwitchState) -> Iterator[str]:
    """Serve ``state`` on 127.0.0.1 (a free port) in a thread; yields the URL and stops the server after."""
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/d0"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
