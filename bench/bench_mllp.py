"""MLLP ingest into SQLite with ACK after commit: messages per second over a real socket.

The listener runs in a separate process (as ``interop serve`` would), the sender here keeps a window of
unacknowledged messages (group commit: one transaction per batch of queued messages, never an AA before
its message's commit). Baseline, same run: the same listener with a sender that waits for each ACK (one
message per transaction), which is what a strict one-in-flight sender gets.

    python -m bench.bench_mllp [--n 5000] [--window 200]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

from bench import cpu_seconds
from interop.ingest.mllp import MllpServer, ack_code, send

_RDS = (
    "MSH|^~\\&|PHARMSYS|RX01|MEDSYNC|HUB|20250105093000||RDS^O13^RDS_O13|{n}|P|2.5.1\r"
    "PID|1||MRN{p}^^^RX01^MR||DOE^JANE{p}||19600101|F\r"
    "ORC|RE||RX{n}^RX01||CM||||20250101120000|||1234567893^SMITH^ANN^^^^^^NPI^L^^^NPI\r"
    "RXE||00071015623^LIPITOR 20 MG TABLET^NDC|1||TAB|TAB|||G|30|TAB|5|||RX{n}|4|1\r"
    "TQ1|1||QD\r"
    "RXD|1|00071015623^LIPITOR 20 MG TABLET^NDC|20250105|30|TAB|||4\r"
)


def messages(count: int, offset: int = 0) -> list[bytes]:
    return [_RDS.format(n=offset + i, p=(offset + i) // 5).encode() for i in range(count)]


def _serve(db_url: str, ready: mp.Queue) -> None:  # type: ignore[type-arg]
    from interop import heap
    from interop.ingest.pipeline import Ingestor
    from interop.store import open_repository

    async def run() -> None:
        server = MllpServer(Ingestor(open_repository(db_url)), "127.0.0.1", 0)
        heap.settle()  # as ``interop serve`` does before serving
        await server.start()
        ready.put(server.bound_port)
        await asyncio.Event().wait()

    asyncio.run(run())


def _rate(port: int, batch: list[bytes], window: int) -> float:
    started = time.perf_counter()
    acks = send("127.0.0.1", port, batch, window=window, timeout=120)
    elapsed = time.perf_counter() - started
    if len(acks) != len(batch) or any(ack_code(a) != "AA" for a in acks):
        raise RuntimeError("not every message was accepted")
    return len(batch) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000, help="messages in the pipelined run")
    parser.add_argument("--window", type=int, default=200, help="unacknowledged messages in flight")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        ctx = mp.get_context("spawn")
        ready: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
        proc = ctx.Process(target=_serve, args=(db_url, ready), daemon=True)
        proc.start()
        try:
            port = ready.get(timeout=60)
            _rate(port, messages(200, offset=10_000_000), args.window)  # warm-up: schema, caches
            baseline_n = max(200, args.n // 10)
            baseline = _rate(port, messages(baseline_n, offset=20_000_000), 1)
            cpu_before = cpu_seconds(proc.pid) if proc.pid is not None else None
            piped = _rate(port, messages(args.n), args.window)
            cpu_after = cpu_seconds(proc.pid) if proc.pid is not None else None
        finally:
            proc.kill()
            proc.join()
    print(f"MLLP ingest, ACK after commit, SQLite: {piped:,.0f} messages/s ({args.n} messages, window {args.window})")
    print(f"baseline, one message in flight (one transaction each): {baseline:,.0f} messages/s ({baseline_n} messages)")
    print(f"ratio: {piped / baseline:.1f}x the one-in-flight sender; goal >= 2,000 messages/s")
    if cpu_before is not None and cpu_after is not None:
        per_message = (cpu_after - cpu_before) / args.n
        print(
            f"listener CPU {per_message * 1e6:.0f} µs/message in the pipelined run: {1 / per_message:,.0f} messages/s"
            " per core, the rate a listener with a core to itself reaches (less moved by other load than the rate)"
        )


if __name__ == "__main__":
    main()
