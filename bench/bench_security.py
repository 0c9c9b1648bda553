"""Cost of authorization and audit on the FHIR API: reads and searches per second in process with a bearer
token checked and an AuditEvent written for each, against the same requests with both off (the baseline);
the app is called through httpx's ASGI transport, so the figures are the app's own cost.

Run: ``.venv/bin/python -m bench.bench_security`` (default 1,000 requests of each kind); ``--n`` scales it.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from interop.api import create_app
from interop.api.tokens import mint
from interop.config import Settings
from interop.store import open_repository

SECRET = "bench-secret-bench-secret-bench-secret-0123"


def _rate(folder: Path, name: str, n: int, secured: bool, audited: bool) -> float:
    """Requests per second of ``n`` requests (half reads, half searches) on a fresh SQLite store."""
    settings = Settings(auth_enabled=secured, audit_enabled=audited, auth_secret=SECRET, rate_limit=0)
    repo = open_repository(f"sqlite:///{folder / name}.db")
    headers = {"Authorization": f"Bearer {mint(settings, 'system/*.rs', 3600)}"} if secured else {}
    ids = [repo.create({"resourceType": "Patient", "name": [{"family": f"Bench{i}"}]}).stored.id for i in range(50)]
    transport = httpx.ASGITransport(app=create_app(repo, settings))

    async def run() -> float:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            start = time.perf_counter()
            for i in range(n // 2):
                assert (await client.get(f"/fhir/Patient/{ids[i % 50]}", headers=headers)).status_code == 200
                assert (await client.get("/fhir/Patient?_count=5", headers=headers)).status_code == 200
            return n / (time.perf_counter() - start)

    try:
        return asyncio.run(run())
    finally:
        repo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000, help="requests per run (half reads, half searches)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        baseline = _rate(folder, "baseline", args.n, secured=False, audited=False)
        tokens = _rate(folder, "tokens", args.n, secured=True, audited=False)
        secured = _rate(folder, "secured", args.n, secured=True, audited=True)
    print(f"authorization off, no audit (baseline): {baseline:,.0f} requests/s")
    print(f"bearer token + scopes, no audit: {tokens:,.0f} requests/s (ratio {tokens / baseline:.2f})")
    print(f"bearer token + scopes + AuditEvent per request: {secured:,.0f} requests/s (ratio {secured / baseline:.2f})")


if __name__ == "__main__":
    main()
