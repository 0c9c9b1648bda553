"""The reversal scheduler of ``interop serve`` against the switch simulator: a paid fill that nobody picked
up is reversed on its deadline by the background thread, and only once."""

from __future__ import annotations

import time
from datetime import date

from interop.claims.scheduler import reversal_pass, start_reversal_scheduler
from interop.claims.service import build_and_store, submit
from interop.claims.switch import SwitchClient
from interop.config import Settings
from interop.store import open_repository
from tests.claims_inputs import PATIENT, PHARMACY, PRESCRIBER, REQUEST, SHORT_COSTS, SHORT_FILL, coverage
from tests.switch_simulator import TOKEN, SwitchState, running_switch


def test_scheduler_reverses_an_unclaimed_fill_on_its_deadline_once(sqlite_url: str) -> None:
    repo = open_repository(sqlite_url)
    for resource in (PHARMACY, PATIENT, PRESCRIBER, coverage(), REQUEST, SHORT_FILL):
        repo.update(resource)
    state = SwitchState()
    with running_switch(state) as url:
        built = build_and_store(repo, SHORT_FILL["id"], SHORT_COSTS, software_vendor="SYNTHSW001")
        with SwitchClient(url, token=TOKEN) as client:
            submit(repo, built.claim["id"], client, date(2025, 3, 19))
            assert reversal_pass(repo, client, date(2025, 4, 1)) == 0  # day 13: not yet due
        settings = Settings(switch_url=url, switch_token=TOKEN, reversal_interval=0.2)
        started = start_reversal_scheduler(repo, settings, clock=lambda: date(2025, 4, 2))
        assert started is not None
        thread, stop = started
        try:
            deadline = time.monotonic() + 20
            while repo.read("Claim", built.claim["id"]).resource()["status"] != "cancelled":
                assert time.monotonic() < deadline, "the scheduler did not reverse the claim"
                time.sleep(0.1)
            time.sleep(0.6)  # a few more passes: nothing more to reverse
        finally:
            stop.set()
            thread.join(5)
    b2s = [d for d in state.received if d[8:10] == b"B2"]
    assert len(b2s) == 1
    repo.close()


def test_no_switch_no_scheduler(sqlite_url: str) -> None:
    repo = open_repository(sqlite_url)
    assert start_reversal_scheduler(repo, Settings(switch_url="")) is None
    repo.close()
