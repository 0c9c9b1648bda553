"""NCPDP D.0 codec throughput: parse + serialize, in transactions per second on one core, against
dzero-python 1.0.2 (``Request.parse`` / ``Response.parse`` + ``to_s``) on the same bytes in the same run.

Workloads: the synthetic med-sync short-fill B1 (one claim), the same B1 with four claims (the D.0 maximum),
and the six well-framed corpus files in turn. A third figure also splits every field into (id, value)
pairs, since the codec splits a segment's fields lazily. Goal: >= 50,000 transactions/s.

Run: ``.venv/bin/python -m bench.bench_telecom`` (default 10,000 transmissions per workload); ``--n`` scales.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from dzero_python import Request, Response

from adapters.telecom import RequestHeader, Segment, Transmission, parse, serialize

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "ncpdp-d0" / "synthetic"
GOAL = 50_000


def _claim(rx: str) -> list[Segment]:
    return [
        Segment("07", [("EM", "1"), ("D2", rx), ("E1", "03"), ("D7", "00000123401"), ("E7", Decimal("26")),
                       ("D3", 2), ("D5", 13), ("D6", "1"), ("D8", "0"), ("DE", "20241201"), ("DF", 5),
                       ("DJ", "3"), ("NX", 1), ("DK", "47"), ("28", "EA")]),
        Segment("11", [("D9", Decimal("81.90")), ("DC", Decimal("2.00")), ("DQ", Decimal("110.00")),
                       ("DU", Decimal("83.90")), ("DN", "01")]),
        Segment("03", [("EZ", "01"), ("DB", "1245319599")]),
    ]


def built_b1(claims: int) -> bytes:
    """The corpus short-fill B1 rebuilt through the builder API, with ``claims`` transactions."""
    header = RequestHeader(bin="999999", transaction_code="B1", pcn="MEDSYNC", provider_id="1234567893",
                           date_of_service="20250319", software_vendor="SYNTHSW001", transaction_count=claims)
    top = [Segment("04", [("C2", "SYNTH0001"), ("C1", "GRP001"), ("C3", "01"), ("C6", "1")]),
           Segment("01", [("C4", "19500101"), ("C5", "2"), ("CA", "JANE"), ("CB", "SYNTHETIC")])]
    return serialize(Transmission(header, top, [_claim(f"{123456 + i:09d}") for i in range(claims)]))


def workloads() -> dict[str, list[bytes]]:
    files = sorted(CORPUS.glob("*.ncpdp")) if CORPUS.is_dir() else []
    one = (CORPUS / "b1-medsync-shortfill-scc47.request.ncpdp")
    return {
        "B1, 1 claim": [one.read_bytes() if one.exists() else built_b1(1)],
        "B1, 4 claims": [built_b1(4)],
        **({"corpus mix (6 files)": [f.read_bytes() for f in files]} if files else {}),
    }


def _ours(data: bytes) -> None:
    serialize(parse(data))


def _ours_every_field(data: bytes) -> None:
    transmission = parse(data)
    for seg in transmission.segments:
        seg.fields  # noqa: B018
    for transaction in transmission.transactions:
        for seg in transaction.segments:
            seg.fields  # noqa: B018
    serialize(transmission)


def _dzero(data: bytes) -> None:
    text = data.decode("latin-1")
    (Response if text.startswith("D0") else Request).parse(text).to_s()


def _rate(run: Callable[[bytes], None], inputs: list[bytes], n: int, per_input: list[int]) -> float:
    """Transactions per CPU second (process time, so other load on the machine does not count), the best of
    three passes over ``n`` transmissions."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for i in range(n):
            run(inputs[i % len(inputs)])
        best = min(best, time.process_time() - start)
    transactions = sum(per_input[i % len(inputs)] for i in range(n))
    return transactions / best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000, help="transmissions per workload and pass")
    args = parser.parse_args(argv)
    print(f"NCPDP D.0 parse + serialize, {args.n} transmissions per workload, best of 3, per CPU second "
          f"(goal {GOAL:,} tx/s)")
    for name, inputs in workloads().items():
        for data in inputs:
            assert serialize(parse(data)) == data, f"{name}: round trip is not byte-exact"
        per_input = [parse(data).header.transaction_count for data in inputs]
        ours = _rate(_ours, inputs, args.n, per_input)
        every = _rate(_ours_every_field, inputs, args.n, per_input)
        baseline = _rate(_dzero, inputs, args.n, per_input)
        verdict = "meets" if ours >= GOAL else "MISSES"
        print(f"  {name:22s} ours {ours:10,.0f} tx/s ({verdict} goal) | with every field split {every:10,.0f} tx/s"
              f" | dzero-python {baseline:10,.0f} tx/s | ratio {ours / baseline:4.1f}x"
              f" ({every / baseline:4.1f}x with fields split)")


if __name__ == "__main__":
    main()
