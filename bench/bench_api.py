"""FHIR API throughput: uvicorn serves ``create_app`` on a SQLite file in a subprocess; this process (or
``wrk`` when installed) generates the load. Prints requests/s and p50/p99 for reads by id, the searches
``MedicationDispense?patient=X&status=completed``, transaction import (resources/s) and page 50 vs page 1,
each with its ratio against a baseline measured in the same run:

- reads and searches: a bare endpoint in the same uvicorn process returning the same bytes
  (``GET /bench-baseline``, registered only by this module's app factory), i.e. our overhead over HTTP;
- import: the same Bundles through ``repository.process_bundle`` in this process (no HTTP, no validation).

Run: ``.venv/bin/python -m bench.bench_api`` (default 20,000 dispenses); ``--n 100000`` for the goal;
``--import-only`` stops after the import line. That line also gives the server's CPU per resource (Linux),
which other load on the machine moves much less than the rate.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import cpu_seconds

PER_PATIENT = 20
BUNDLE_SIZE = 500
BASELINE_ENV = "INTEROP_BENCH_PAYLOADS"


# ---------------------------------------------------------------------------- server side (uvicorn)
def bench_app() -> Any:
    """``create_app()`` plus ``GET /bench-baseline/{name}``: a bare Starlette endpoint answering the bytes of
    ``$INTEROP_BENCH_PAYLOADS/{name}.json`` (read once), to measure the HTTP floor in the same process."""
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from interop import heap
    from interop.api import create_app

    app = create_app()
    folder = Path(os.environ[BASELINE_ENV])
    cache: dict[str, bytes] = {}

    async def baseline(request: Request) -> Response:
        name = request.path_params["name"]
        body = cache.get(name)
        if body is None:
            body = cache[name] = (folder / f"{name}.json").read_bytes()
        return Response(body, media_type="application/fhir+json; charset=utf-8")

    app.router.routes.insert(0, Route("/bench-baseline/{name}", baseline, methods=["GET"]))
    heap.settle()  # as ``interop serve`` does before serving
    return app


# ------------------------------------------------------------------------------------------- data
def _patient(i: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": f"p{i}",
        "name": [{"family": f"Bench{i}", "given": ["Pat"]}],
        "gender": "female",
    }


def _dispense(i: int, patients: int) -> dict[str, Any]:
    p = i % patients
    day = 1 + i % 28
    return {
        "resourceType": "MedicationDispense",
        "id": f"d{i}",
        "status": "in-progress" if i % 4 == 0 else "completed",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": f"{i % 90000 + 10000:05d}050101"}],
            "text": "atorvastatin 20 MG Oral Tablet",
        },
        "subject": {"reference": f"Patient/p{p}"},
        "authorizingPrescription": [{"reference": f"MedicationRequest/rx{p}-{i % 3}"}],
        "quantity": {"value": 30, "unit": "tablet", "system": "http://unitsofmeasure.org", "code": "{tbl}"},
        "daysSupply": {"value": 30, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"},
        "whenHandedOver": f"2026-{1 + i % 10:02d}-{day:02d}T15:30:00Z",
    }


def _bundles(n: int) -> list[dict[str, Any]]:
    patients = max(1, n // PER_PATIENT)
    resources = [_patient(i) for i in range(patients)] + [_dispense(i, patients) for i in range(n)]
    return [
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                for r in resources[start : start + BUNDLE_SIZE]
            ],
        }
        for start in range(0, len(resources), BUNDLE_SIZE)
    ]


# ------------------------------------------------------------------------------------ load generation
def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def _wrk(
    base: str, paths: list[str], seconds: float, connections: int, workdir: Path
) -> tuple[float, float, float]:
    script = workdir / "paths.lua"
    listing = ",\n".join(orjson.dumps(p).decode() for p in paths)
    script.write_text(
        "local paths = {" + listing + "}\n"
        "request = function()\n"
        '  return wrk.format("GET", paths[math.random(#paths)], {["Accept"] = "application/fhir+json"})\n'
        "end\n"
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("RESULT %d %d %d %f %f\\n", summary.requests, summary.duration,\n'
        "    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout,\n"
        "    latency:percentile(50), latency:percentile(99)))\n"
        "end\n"
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    _, count, micros, errors, p50, p99 = line.split()
    if int(errors):
        raise RuntimeError(f"wrk saw {errors} failed requests:\n{out}")
    return int(count) / (int(micros) / 1e6), float(p50) / 1000, float(p99) / 1000


def _python_load(base: str, paths: list[str], seconds: float, connections: int) -> tuple[float, float, float]:
    latencies: list[float] = []
    failures: list[str] = []
    stop = time.perf_counter() + seconds

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        mine: list[float] = []
        with httpx.Client(base_url=base, headers={"Accept": "application/fhir+json"}) as client:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                r = client.get(paths[rnd.randrange(len(paths))])
                mine.append((time.perf_counter() - started) * 1000)
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text[:200]}")
        latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests, first: {failures[0]}")
    return len(latencies) / (time.perf_counter() - started), _pct(latencies, 0.5), _pct(latencies, 0.99)


def load(
    base: str, paths: list[str], seconds: float, connections: int, workdir: Path
) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of GETs of random ``paths`` for ``seconds`` over ``connections``."""
    if shutil.which("wrk"):
        return _wrk(base, paths, seconds, connections, workdir)
    return _python_load(base, paths, seconds, min(connections, 8))


# ------------------------------------------------------------------------------------------------ run
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(db_url: str, port: int, payloads: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "INTEROP_DATABASE_URL": db_url,
        BASELINE_ENV: str(payloads),
        "INTEROP_LOG_LEVEL": "WARNING",
        "INTEROP_AUTH_ENABLED": "false",  # the bare API; bench_security measures tokens and audit
        "INTEROP_AUDIT_ENABLED": "false",
        "INTEROP_RATE_LIMIT": "0",
    }
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "bench.bench_api:bench_app", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, cwd=Path(__file__).resolve().parent.parent)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("uvicorn did not start")


def _import(base: str, bundles: list[bytes]) -> float:
    count = 0
    started = time.perf_counter()
    with httpx.Client(timeout=300) as client:
        for body in bundles:
            r = client.post(base + "/fhir", content=body, headers={"Content-Type": "application/fhir+json"})
            if r.status_code != 200:
                raise RuntimeError(f"import failed: {r.status_code} {r.text[:300]}")
            count += body.count(b'"request":')
    return count / (time.perf_counter() - started)


def _import_baseline(bundles: list[dict[str, Any]], workdir: Path) -> float:
    from interop.store import open_repository

    repo = open_repository(f"sqlite:///{workdir / 'baseline.db'}")
    try:
        count = 0
        started = time.perf_counter()
        for bundle in bundles:
            repo.process_bundle(bundle)
            count += len(bundle["entry"])
        return count / (time.perf_counter() - started)
    finally:
        repo.close()


def _page_url(base: str, params: str, page: int) -> str:
    url = f"{base}/fhir/MedicationDispense?{params}"
    with httpx.Client() as client:
        for _ in range(page - 1):
            bundle = client.get(url).json()
            url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    return url.removeprefix(base)


def _line(
    label: str, ours: tuple[float, float, float], baseline: tuple[float, float, float] | None = None
) -> None:
    text = f"{label:<46} {ours[0]:>9,.0f} req/s   p50 {ours[1]:6.2f} ms   p99 {ours[2]:6.2f} ms"
    if baseline:
        text += f"   ratio {ours[0] / baseline[0]:.2f} of bare endpoint ({baseline[0]:,.0f} req/s)"
    print(text, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000, help="MedicationDispenses to load (goal: 100000)")
    parser.add_argument("--seconds", type=float, default=4.0, help="duration of each load phase")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--import-only", action="store_true", help="measure the transaction import alone")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench_api_"))
    port = args.port or _free_port()
    base = f"http://127.0.0.1:{port}"
    print(
        f"generator: {'wrk' if shutil.which('wrk') else 'python httpx threads'}; {os.cpu_count()} CPUs; "
        f"n={args.n:,} dispenses; {args.connections} connections; {args.seconds:.0f} s per phase",
        flush=True,
    )
    bundles = _bundles(args.n)
    bodies = [orjson.dumps(b) for b in bundles]
    server = _serve(f"sqlite:///{workdir / 'api.db'}", port, workdir)
    try:
        cpu_before = cpu_seconds(server.pid)
        rate = _import(base, bodies)
        cpu_after = cpu_seconds(server.pid)
        store_rate = _import_baseline(bundles, workdir)
        # Other work on the machine moves the server's CPU per resource much less than it moves the rate.
        resources = sum(len(b["entry"]) for b in bundles)
        cpu = (
            f"; server CPU {(cpu_after - cpu_before) / resources * 1e6:.0f} µs/resource"
            if cpu_before is not None and cpu_after is not None
            else ""
        )
        print(
            f"{'transaction import (Bundles of ' + str(BUNDLE_SIZE) + ', PUT)':<46} {rate:>9,.0f} resources/s"
            f"   ratio {rate / store_rate:.2f} of the store in process ({store_rate:,.0f} resources/s){cpu}",
            flush=True,
        )
        if args.import_only:
            return

        rnd = random.Random(7)
        ids = [f"d{rnd.randrange(args.n)}" for _ in range(2000)]
        (workdir / "read.json").write_bytes(httpx.get(f"{base}/fhir/MedicationDispense/{ids[0]}").content)
        bare = load(base, ["/bench-baseline/read"], args.seconds, args.connections, workdir)
        _line("baseline: bare endpoint, same bytes", bare)
        reads = load(
            base, [f"/fhir/MedicationDispense/{i}" for i in ids], args.seconds, args.connections, workdir
        )
        _line("read MedicationDispense/{id}", reads, bare)

        patients = max(1, args.n // PER_PATIENT)
        search_paths = [
            f"/fhir/MedicationDispense?patient=p{rnd.randrange(patients)}&status=completed"
            for _ in range(2000)
        ]
        (workdir / "search.json").write_bytes(httpx.get(base + search_paths[0]).content)
        bare_search = load(base, ["/bench-baseline/search"], args.seconds, args.connections, workdir)
        _line("baseline: bare endpoint, a search's bytes", bare_search)
        searches = load(base, search_paths, args.seconds, args.connections, workdir)
        _line(f"search patient=X&status=completed ({args.n:,})", searches, bare_search)

        params = "status=completed&_count=20"
        first = _page_url(base, params, 1)
        fiftieth = _page_url(base, params, 50)
        page1 = load(base, [first], args.seconds, args.connections, workdir)
        page50 = load(base, [fiftieth], args.seconds, args.connections, workdir)
        _line("search page 1 (status=completed, _count=20)", page1)
        _line("search page 50 (keyset cursor)", page50)
        print(f"page 50 p99 / page 1 p99: {page50[2] / page1[2]:.2f}", flush=True)
        print(
            "goals (2 cores, SQLite): reads >= 3,000/s, searches >= 1,000/s over 100,000 dispenses, import >= 5,000"
            " resources/s, page 50 p99 <= page 1 p99",
            flush=True,
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
