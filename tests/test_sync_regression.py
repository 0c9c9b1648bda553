"""The sync planner's output pinned for 320 deterministic synthetic patients, so speed work cannot change it.

Every plan's essential output (anchor, steady day, every fill's day/days/quantity/packages/kind/claim code,
renewals, exclusions, pickups, the scored candidates, the narrative and the per-drug notes) is hashed; the
digests below were computed with the planner before the performance work of issue 5. To regenerate after an
intended behaviour change: ``.venv/bin/python -m tests.test_sync_regression`` and paste its output over
``DIGESTS`` (and say why in the change).
"""

from __future__ import annotations

import hashlib
import math
import random
from datetime import date, timedelta
from typing import Any

import pytest

from interop.fhir.systems import extension_url
from interop.sync.plan import SyncPlan, plan_patient
from interop.sync.settings import Preference, SyncSettings, load_settings
from tests.sync_builders import coverage, dispense, request

TODAY = date(2026, 11, 26)
SEED = 20261126
COUNT = 320
TABLETS = ("lisinopril 10 mg tablet", "atorvastatin 20 mg tablet", "metformin 500 mg tablet",
           "amlodipine 5 mg tablet", "losartan 50 mg tablet", "levothyroxine 50 mcg tablet",
           "sertraline 50 mg tablet", "alprazolam 0.5 mg tablet", "hydrocodone 5 mg tablet",
           "oxycodone 5 mg tablet", "amoxicillin 500 mg capsule", "pregabalin 75 mg capsule")
EYE_DROPS = {
    "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "drop", "code": "[drp]"}}],
    "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
    "site": {"text": "both eyes"},
}
INSULIN = {
    "doseAndRate": [{"doseQuantity": {"value": 10, "unit": "units", "code": "[iU]"}}],
    "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
}
REFILLS_LEFT = extension_url("refills-remaining")
Case = dict[str, Any]


def _drug(
    rng: random.Random, patient: str, index: int, slot: int, clean: bool
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One prescription of a random kind (a maintenance tablet when ``clean``) and 0-3 earlier dispenses."""
    rid = f"reg-{index}-{slot}"
    kind = "tablet" if clean else rng.choice(("tablet",) * 8 + ("drops", "insulin", "pen", "cream", "prn", "acute"))
    refills = rng.choice((0, 1, 2, 3, 5, 11))
    common: dict[str, Any] = {"refills": refills, "patient": patient, "requester": clean or rng.random() > 0.1}
    if rng.random() < 0.1:
        common["validity_end"] = TODAY + timedelta(days=rng.randint(-5, 150))
    if kind in ("tablet", "prn", "acute"):
        days = rng.choice((28, 30, 30, 30, 34, 60, 90))
        per_day = rng.choice((0.5, 1, 1, 1, 1.5, 2, 3))
        qty = float(math.ceil(days * per_day))
        unit = rng.choice(("TAB", "TAB", "{tbl}", "CAP"))
        req = request(rid, rng.choice(TABLETS[:7] if clean else TABLETS), quantity=qty, days=days, unit=unit, prn=kind == "prn",
                      course="acute" if kind == "acute" else None, **common)
    elif kind == "drops":
        days, qty, unit = 25, 5.0, "mL"
        req = request(rid, "latanoprost 0.005% ophthalmic solution", quantity=qty, days=days, unit=unit,
                      dosage=EYE_DROPS, **common)
    elif kind == "insulin":
        days, qty, unit = 30, 3.0, "mL"
        req = request(rid, "insulin glargine U-100 3 mL pen", quantity=qty, days=days, unit=unit, dosage=INSULIN,
                      **common)
    elif kind == "pen":
        pens = rng.randint(1, 3)
        days, qty, unit = 30 * pens, float(pens), "{pen}"
        req = request(rid, "semaglutide pen", quantity=qty, days=days, unit=unit, **common)
    else:
        days, qty, unit = 30, 30.0, "g"
        req = request(rid, "triamcinolone 0.1% cream", quantity=qty, days=days, unit=unit, **common)
    if not clean and rng.random() < 0.1:
        req["status"] = rng.choice(("stopped", "on-hold"))
    if rng.random() < 0.1:
        req["extension"] = [{"url": REFILLS_LEFT, "valueUnsignedInt": rng.randint(0, 4)}]
    fills = rng.choice((0, 1, 1, 1, 2, 3))
    last_ago = rng.randint(0, days + 12)
    history = []
    for n in range(fills):
        when = TODAY - timedelta(days=last_ago + days * (fills - 1 - n))
        scc = rng.choice((None, None, None, "47", "61", "48"))
        disp = dispense(f"{rid}-d{n}", rid, when, quantity=qty, days=days, unit=unit, scc=scc, patient=patient)
        if rng.random() < 0.05:
            disp["status"] = "entered-in-error"
        history.append(disp)
    if history and rng.random() < 0.05:
        history.append(dict(history[-1]))  # the same record delivered twice
    return req, history


def cases(count: int = COUNT, seed: int = SEED, clean_every: int = 4) -> list[Case]:
    """``count`` patients: 1-7 prescriptions each (every ``clean_every``-th maintenance tablets only, like the bench's), random payer, state, cycle, tolerance, minimum short fill, preference, anchor."""
    rng = random.Random(seed)
    out: list[Case] = []
    for index in range(count):
        patient = f"Patient/reg-{index}"
        requests: list[dict[str, Any]] = []
        dispenses: list[dict[str, Any]] = []
        for slot in range(rng.randint(1, 7)):
            req, hist = _drug(rng, patient, index, slot, index % clean_every == 0)
            requests.append(req)
            dispenses.extend(hist)
        rng.shuffle(dispenses)
        pref = None
        if rng.random() < 0.25:
            pref = Preference(weekday=rng.choice((None, 0, 4)), day_of_month=rng.choice((None, 1, 15, 28)))
        out.append({
            "requests": requests,
            "dispenses": dispenses,
            "coverage": coverage(rng.choice((None, "SYNTH-PART-D", "SYNTH-PBM-80", "SYNTH-PBM-90")),
                                 copay=rng.choice((None, None, 4.5, 25.0)), patient=patient),
            "cycle": rng.choice((28, 30, 30, 30, 56, 84, 90)),
            "anchor": TODAY + timedelta(days=rng.randint(0, 60)) if rng.random() < 0.2 else None,
            "state": rng.choice((None, None, "NY", "OK", "PA")),
            "tolerance": rng.choice((0, 3, 7, 7, 10)),
            "min_short": rng.choice((1, 1, 1, 3)),
            "preference": pref,
        })
    return out


def plan_case(case: Case, settings: dict[tuple[int, int], SyncSettings]) -> SyncPlan:
    key = (case["tolerance"], case["min_short"])
    if key not in settings:
        settings[key] = load_settings(tolerance_days=key[0], min_short_fill_days=key[1])
    return plan_patient(case["requests"], case["dispenses"], case["coverage"], settings[key], TODAY,
                        anchor=case["anchor"], cycle_days=case["cycle"], preference=case["preference"],
                        state=case["state"])


def essential(plan: SyncPlan) -> str:
    """The plan's observable output as text: the thing the digest pins."""
    lines = [f"{plan.patient} {plan.anchor} {plan.cycle_days} {plan.steady} {plan.payer} {plan.state} "
             f"{plan.sync_scc} {plan.synced}"]
    lines += [repr(tuple(fill)) for fill in plan.fills]
    lines += [repr(tuple(renewal)) for renewal in plan.renewals]
    lines += [f"{e.request_id} {e.drug_name} {e.reason.value} {e.detail}" for e in plan.exclusions]
    lines += [repr(tuple(pickup)) for pickup in plan.pickups]
    if plan.choice is not None:
        lines.append(f"{plan.choice.chosen_by} {plan.choice.day} {plan.choice.objective}")
        lines += [repr(tuple(cand)) for cand in plan.choice.candidates]
        lines.append(plan.choice.narrative())
    lines += [plan.drug_note(rid) for rid in sorted(plan.regimens)]
    return "\n".join(lines)


def digest(plan: SyncPlan) -> str:
    return hashlib.sha256(essential(plan).encode()).hexdigest()[:16]


def current_digests() -> list[str]:
    memo: dict[tuple[int, int], SyncSettings] = {}
    return [digest(plan_case(case, memo)) for case in cases()]


DIGESTS: tuple[str, ...] = (
    "e923ac8b283017c8", "08c236cb9ab41acb", "f6b9a56a0e7f771b", "89d6e56de68dedad", "6c45081f74462a22", "bbec5192486fdd67",
    "d7c1133a512fc171", "8b155482852e7aed", "ece0bb587c5e3cb6", "2f2c1da60e442270", "77309024c31dcccc", "915a5f6c9b231d75",
    "f52ddd837b2f0aef", "55710e3b65899c1b", "ae068423b2cfc25d", "b0aa8c79c5307d47", "200bd6a7e34e7833", "1cb1517d7bc2b1be",
    "9c6ef47d3973ab00", "944b994046edaf36", "4c14d93d2b72cc5c", "20845076a504c94c", "f5fc6e7c7cd71f01", "b5197c5ef8875b7e",
    "7b52a297f5416b31", "56d3a06e169a22a6", "1e65ba08b05435bc", "ecc3efe100364ff3", "f5cb999d05799986", "92b2726f07663cfe",
    "df57084dd5035b68", "551cd4af09046e83", "da6fa488bbe32aa9", "900c6fa25c0eecc9", "01021bb4b0cc7f42", "9708cc25e0ac0fe7",
    "836fcf8f39dad9fa", "0e092963315a0509", "24649033a0052a2c", "1cb871ac6a8c52a3", "2edec2c8378a60a0", "58a844db55b6411e",
    "ef441d35e6228195", "a56e7daa5799e8e2", "c15a810af9ac63fa", "bb516582f80b7c16", "2a0fa661b992643c", "74cf5f8db7a339d0",
    "63b7134b4721a1a3", "9701d4465e2c0b1e", "2915585d37cf8d73", "a52ae48b61354e36", "6fe3c1a32307e673", "ce77901572b3aeaf",
    "40f5075d7c30c6ac", "f054a44976f86489", "990146f093a2015a", "d0cd8c0ed5c83aa8", "abf9865f7ceb4fb1", "19de121cf71a8620",
    "4ebc275d4ac55f44", "d1b8b41d01554895", "752633d49e7b1248", "4f831604aa99ee07", "31483474aa495778", "20a61bd37ac783d9",
    "df5cc3faca572e77", "a1ef5f570cfd9085", "0532d956507663f4", "bbe93f8d83d5fd9a", "175112392557b97f", "18b8a0dbfb713543",
    "a442b88b1e13b189", "4286980db435b766", "94fefb91e87b51a0", "e868acab7308f382", "2f40fa9627c014c2", "e9014a212ded898a",
    "ba4be1f009655fe6", "316fc41ed799f4fc", "4e6251a122d63c96", "7a38a42a267185c3", "9426a941a7787885", "bdce5b405b338dc6",
    "5f241370b7980a37", "652172a765323e28", "4bad0613be9c6e2b", "b646560e3cfb5b5e", "dbcc4fcf1a04069c", "d04c2bf6545c493b",
    "a09e686b0879feb8", "0ecb07e150a71096", "8f4675f339257231", "c2a7006372e10dc4", "3d16ad54dc83d042", "73020304a010477b",
    "997408c311fe5b67", "e3fb65f40975924b", "ad14afdac6bbbde7", "ce6abc25de213759", "5afb90260f77aca4", "cfda31e60e950f5f",
    "8a1efa4b583dc941", "f1c4490c3a93e6f2", "8cabca7f8c87e7d2", "4ac0da0e412d47fd", "a3f8b3a3d0d813e8", "1b80abee2b1106fc",
    "398d6af16fd02ea4", "6f95145ded74807d", "47815a9430b0e780", "82674b7ee7acce70", "fd1b9374cf3f4ffd", "2653965e07c29c41",
    "87f0f6ce4b40db48", "0607282d43177203", "c7fc81741f29d09c", "3bc7ecacfd1e048d", "6b5045b8b5a2b022", "8ba1e1f1a7712c84",
    "f04f6304eeef1aaf", "b865695e62405066", "458378833fc03767", "bd524681e78aecd1", "3078fcb70bcd090a", "b1058e63cbe2f178",
    "4292789502f7b094", "0d850e5bf3a00b40", "1b173a7dbb590ea9", "0b3d58de57b85765", "b4e983efc5b813a4", "bbba4b8402aa6b60",
    "54809cd6b7bb4cd4", "c03b4569a9ca9680", "0fb9077ddfa57c27", "2f850aceb79cd554", "557d213afcd49d49", "f10cdc9d222d67ad",
    "e87a2240b6ca1111", "b3fd9d4695c2be42", "dbabb74c795727a7", "a88d2c3ead0c87fb", "b138e1e682957b85", "555b6463f99163e8",
    "09cc9b44e9cd571a", "364453e5cc97038d", "24cf367ebc2e826e", "5939c64a9d3b3425", "96f0cb69195f1416", "425cd274d837f1a0",
    "fed5ae88252f0bfb", "e60c5d3f22a1908c", "25c731aa4873ec3a", "21f48881f57a877f", "74d779f78bd23ce3", "fe744259bfd28dea",
    "66661462f3bd4412", "a98f5291db2b7cff", "c6077713308a58a9", "bb55a362ca763ad0", "31c332ef4c74db29", "3044f2cfcec03cde",
    "967f60716afb4bbf", "12d55f4d9e9a5a2d", "783d7ee1f56135d5", "541f8ed75138177b", "6e57e9cfee3b7a7b", "eb657b78c2bcde6c",
    "4321b3ad650fe957", "4e4a3b1424322ff9", "6b93ceba29735ba5", "56aa76ff6458d9a6", "0582d2d559e3d884", "e5ad4ced64815ece",
    "8e42d587f07a7d31", "1dcaba5ee28ba049", "17bc86acb74cfc51", "35b4f4fbc44fde55", "d03fc8c6aae1fc28", "e0e36f0f279dd3e9",
    "8149d699a5211513", "39485f4ec18d6c1c", "e4592f0236e79df2", "ba1218bf53b0a977", "47a99f87759df28e", "ddbb850c3d60f4b9",
    "362bc44f1b195433", "f1db84ec7b326de2", "60c1acbb85a20bed", "870e791a1ceac940", "58733785dd1d3fc8", "99d1e1828de610f2",
    "0a5a1ed5cb61359d", "6e4673c3600a2ba6", "ee0468f8ffed869d", "3933d8d9c5b995ad", "58a08739ad12d14d", "ec78487ca602204f",
    "a154d36e5b1ea9e3", "3e5e085505fc6cc2", "b9eea007c1dd944a", "2c00bdc107fdf974", "48909b9359c44b38", "eb92a31664ded84b",
    "1638c834668a505b", "2d54ebb0bd83c091", "95501038739c477b", "ba5fa39d27341287", "445a255b74816371", "5f34f3d6bd149652",
    "1a2a1b474e1be8e1", "749d97ec264041ee", "783d4ea06d78a02c", "617ddc7fca3e1256", "9fdc9aeacce92b89", "b66b16afc08fa874",
    "706a1002d11df49a", "5ab6820409bfa6f7", "2fa9e0edf05f605c", "f0b7a72ae9db5167", "7603428ffcd126e4", "cce9a26c030d3e3c",
    "4dc99ac5680175ac", "7f5b85abb0abfe91", "bcb44fc830eb055e", "e6cee414cb72d329", "02b98e658a0a8b40", "a8d3948b33febbab",
    "d9eb6f40f1f8a5a0", "36a21dedb270bb6c", "cf62fdbff6a706a8", "27a16bb6079bf113", "efeaa978cc563be3", "07e00ecb9b6ee7ab",
    "d7dd5caf04872522", "886b30de9b11a61f", "64237c655c0f11c8", "c1581fa10dcd0cdf", "6ced86c70120f330", "e0e41aa8ddc665ad",
    "293bb2b565fd5edd", "57aa0dab0293092b", "c58ec92134cc02eb", "8aaa9ac7cfaf18d4", "895e02fddccbb52e", "160d248d6dd9707b",
    "c40872dfcc3c10a9", "fbcd36ec74dbdef3", "e1700e19b009ac10", "1eb494b96745ca94", "825eb5e0a7fa37d2", "6b576f2224b1d04f",
    "2e2cdb3d6f8dfda4", "5d3dba2925e1bb52", "af9a3b66fef12b37", "0ce9f22d9cee6616", "c2f46fe9792fcc49", "397f28911ef917b0",
    "733646c1ac9cdddb", "d2344db62c215f90", "cfde424683a9f3d9", "048aadc99ca712cd", "5e9c1df771b4d18e", "f1e277e59aa4c58d",
    "1c76ecc122cd2a7d", "eace065639b1eaa4", "a677a1e937e1e43c", "8a7e1ab442f5ccc4", "6fefe11aadf267ca", "5582f7f72269cce9",
    "da4c593da5d83b1a", "f025f444f00f05e2", "da457004fadec707", "150fc15145cfb9e4", "52bd1786ddc80580", "4b480cc162e92620",
    "05ab795c8a864923", "420beba3b0a58614", "9d6137f16d127376", "7b86849a68730e4a", "da7bd1fe673147a0", "4d44f47ac43f5255",
    "db78a8aa38554e6f", "6521c9384e2632d1", "fb1896ff477855e1", "c768ff6f71bd72dc", "e08e49ec365c78ee", "7d73167987f8d433",
    "6b4c46e5d49951b5", "fa0c1eb10020b5de", "21eee99afc3c7b34", "186146de19afbe32", "8aab31b5e2583749", "148b5c6dca82dce6",
    "7484aa6951dd168a", "8692a38e34d635bb", "44fa8843cc6fa08d", "57a0afe27e400d90", "8fa1a631c9c16112", "c83fc28af8ac75f9",
    "21a02a600f0d1ab5", "bde62b7d683a0183", "44739948c0c478ec", "5306deb1ddec076d", "ad921a6af959c5e2", "e1672bc6c79134cc",
    "6acdbf2eb9b95590", "da2165016c9f42bf", "688c8c4ac7746273", "e6bf649553129932", "f3acd40e799a4a29", "e04e2593c68b90cf",
    "b288d885f73258fe", "4d712e193d80a21f", "1199bb4bbbcf7785", "45780dc9efc97958", "bb2d192e48651421", "c773a2de14ae7666",
    "5767c6c366dcd72f", "412ad5f8003841f2",
)


def test_the_generator_is_deterministic() -> None:
    first, second = cases(), cases()
    assert first == second
    assert len(first) == COUNT == len(DIGESTS)


def test_the_generator_covers_the_planner_branches() -> None:
    memo: dict[tuple[int, int], SyncSettings] = {}
    plans = [plan_case(case, memo) for case in cases()]
    kinds = {fill.kind for plan in plans for fill in plan.fills}
    reasons = {e.reason.value for plan in plans for e in plan.exclusions}
    assert kinds >= {"full", "short", "extended", "anchor", "co-scheduled", "own-cycle"}
    assert reasons >= {"not-active", "prn", "acute", "controlled-schedule-not-allowed-in-state",
                       "sync-limit-reached", "no-refills-no-renewal", "non-splittable-own-cycle"}
    assert any(plan.renewals for plan in plans)
    assert any(fill.needs_renewal for plan in plans for fill in plan.fills)
    assert {plan.choice.chosen_by for plan in plans if plan.choice} == {"optimizer", "requested"}


@pytest.mark.parametrize("start", range(0, COUNT, 40))
def test_plans_match_the_pinned_digests(start: int) -> None:
    memo: dict[tuple[int, int], SyncSettings] = {}
    all_cases = cases()
    for i in range(start, min(start + 40, COUNT)):
        plan = plan_case(all_cases[i], memo)
        assert digest(plan) == DIGESTS[i], f"patient {i} changed:\n{essential(plan)}"


def test_the_optimizer_fast_path_picks_the_best_scored_candidate() -> None:
    """The packed-integer search (anchor._packed_choice) against the per-term columns built for the explanation,
    on 1,500 maintenance-tablet patients (the fast path's domain), the mixed set and 100 patients with a
    negative copay under a non-prorating plan (which must leave the fast path)."""
    memo: dict[tuple[int, int], SyncSettings] = {}
    checked = 0
    odd_copay = [{**case, "coverage": coverage("SYNTH-PBM-80", copay=-2.5, patient=case["coverage"]["beneficiary"]
                                       ["reference"])} for case in cases(100, SEED + 2, clean_every=1)]
    for case in [*cases(1500, SEED + 1, clean_every=1), *cases(), *odd_copay]:
        plan = plan_case(case, memo)
        if plan.choice is None or plan.choice.chosen_by != "optimizer":
            continue
        best = min(plan.choice.candidates, key=plan.choice.key)
        assert best.day == plan.choice.day, essential(plan)
        checked += 1
    assert checked > 1000


if __name__ == "__main__":
    found = current_digests()
    print("DIGESTS: tuple[str, ...] = (")
    for row in range(0, len(found), 6):
        print("    " + " ".join(f'"{d}",' for d in found[row : row + 6]))
    print(")")
