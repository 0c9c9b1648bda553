"""Run every benchmark module in bench/ at its default size, one after another."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def run_all(selected: list[str]) -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    if selected:
        names = [n for n in names if any(s in n for s in selected)]
    failed = 0
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        started = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        saved = sys.argv
        sys.argv = [name]
        try:
            module.main()
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failed += 1
            print(f"{name} failed: {exc!r}", flush=True)
        finally:
            sys.argv = saved
        print(f"({name} took {time.perf_counter() - started:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(run_all(sys.argv[1:]))
