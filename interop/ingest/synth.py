"""A realistic synthetic pharmacy feed as HL7 v2 files: ADT^A04 registrations, RDE^O11 orders, RDS^O13 fills over
a year with varied adherence, and SIU^S12 pickups, for the demo, the tests and the benchmarks.

Drugs come from ``mappings/hl7v2/synth_drugs.csv`` (real NDC-11 and RxNorm codes, source noted per row).
Deterministic: patient i depends only on (seed, i), so a larger N extends a smaller feed.
"""

from __future__ import annotations

import csv
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import click

import mappings
from adapters.hl7v2.er7 import DEFAULT_DELIMITERS

DRUGS_CSV = Path(mappings.__file__).resolve().parent / "hl7v2" / "synth_drugs.csv"
PHARMACY = "SYNTHRX"
APPLICATION = "SYNTHPMS"
EHR = "SYNTHEHR"
OFFSET = "-0500"
_PACKAGES = frozenset(("PEN", "BOTTLE", "INHALER"))
_FAMILY = ("SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ", "MARTINEZ",
           "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE", "JACKSON", "NGUYEN")
_GIVEN_F = ("MARY", "PATRICIA", "LINDA", "BARBARA", "ELIZABETH", "MARIA", "SUSAN", "DOROTHY", "LISA", "NANCY")
_GIVEN_M = ("JAMES", "JOHN", "ROBERT", "MICHAEL", "WILLIAM", "DAVID", "RICHARD", "JOSEPH", "CHARLES", "THOMAS")
_STREETS = ("MAIN ST", "OAK AVE", "MAPLE DR", "CEDAR LN", "ELM ST", "PINE RD", "LAKE VIEW DR", "HILL ST")
_PRESCRIBERS = (("1245319599", "PATEL", "ANITA"), ("1932102084", "OKAFOR", "DANIEL"), ("1508861407", "KIM", "GRACE"))


@dataclass(frozen=True, slots=True)
class Drug:
    """One row of synth_drugs.csv."""

    key: str
    ndc11: str
    rxnorm: str
    name: str
    form: str
    dose: str
    dose_unit: str
    frequency: str
    kind: str
    schedule: str
    fill_qty: str
    fill_unit: str
    days_per_fill: int
    refills: int


def load_drugs(path: Path = DRUGS_CSV) -> list[Drug]:
    """The drug table, in file order."""
    with path.open(newline="", encoding="utf-8") as fh:
        return [
            Drug(
                key=row["key"], ndc11=row["ndc11"], rxnorm=row["rxnorm"], name=row["name"], form=row["form"],
                dose=row["dose"], dose_unit=row["dose_unit"], frequency=row["frequency"], kind=row["kind"],
                schedule=row["schedule"], fill_qty=row["fill_qty"], fill_unit=row["fill_unit"],
                days_per_fill=int(row["days_per_fill"]), refills=int(row["refills"]),
            )
            for row in csv.DictReader(fh)
        ]


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S") + OFFSET


def _e(text: str) -> str:
    return DEFAULT_DELIMITERS.encode(text)


@dataclass(slots=True)
class _Patient:
    index: int
    mrn: str
    family: str
    given: str
    sex: str
    birth: date
    street: str
    phone: str
    adherence: str

    def pid(self) -> str:
        return (f"PID|1||{self.mrn}^^^{PHARMACY}^MR||{self.family}^{self.given}||{self.birth:%Y%m%d}|{self.sex}|||"
                f"{self.street}^^SPRINGFIELD^IL^62701^USA^H||^PRN^PH^^^217^{self.phone}")


class _Feed:
    """Messages of one patient, stamped with increasing control ids."""

    def __init__(self, patient: _Patient) -> None:
        self.patient = patient
        self.count = 0
        self.messages: list[tuple[datetime, str, str]] = []

    def add(self, moment: datetime, kind: str, body: list[str]) -> None:
        self.count += 1
        control = f"{self.patient.mrn}-{self.count:04d}"
        msh = (f"MSH|^~\\&|{APPLICATION}|{PHARMACY}|{EHR}|CLINIC|{_ts(moment)}||{kind}|{control}|P|2.5.1")
        self.messages.append((moment, control, "\r".join([msh, *body]) + "\r"))


def _order_segments(p: _Patient, drug: Drug, rx: str, written: datetime, prescriber: tuple[str, str, str],
                    remaining: int, dispensed: int, order_control: str) -> list[str]:
    npi, last, first = prescriber
    encoded = (f"{drug.ndc11}^{_e(drug.name)}^NDC^{drug.rxnorm}^{_e(drug.name)}^RXNORM")
    prn = drug.kind == "prn" or drug.key == "hydrocodone_apap"
    sig = f"{drug.dose} {drug.dose_unit} {drug.frequency}{' PRN' if prn else ''}"
    orc = f"ORC|{order_control}|P{rx}^{EHR}|{rx}^{PHARMACY}||||||{_ts(written)}|||{npi}^{last}^{first}^^^^^^NPI^L^^^NPI"
    rxe = (f"RXE||{encoded}|{drug.dose}||{drug.dose_unit}|{drug.form}|^{_e(sig)}|||{drug.fill_qty}|{drug.fill_unit}|"
           f"{drug.refills}|||{rx}|{remaining}|{dispensed}|" + "|" * 13 + _ts(written))
    duration = f"{drug.days_per_fill}^D" if (drug.form in _PACKAGES or prn) else ""
    tq1 = f"TQ1|1||{drug.frequency}|||{duration}|||{'PRN' if prn else 'R'}"
    route = {"INHALER": "IH^Inhalation", "PEN": "SC^Subcutaneous", "BOTTLE": "OP^Ophthalmic"}.get(drug.form, "PO^Oral")
    return [orc, rxe, tq1, f"RXR|{route}^HL70162"]


def _delay(rng: random.Random, adherence: str) -> int:
    if adherence == "on-time":
        return rng.randint(-2, 2)
    if adherence == "late":
        return rng.randint(2, 12)
    return rng.choice((0, 1, 3, 5, 20, 35, 60)) if rng.random() < 0.35 else rng.randint(0, 4)


def patient_feed(index: int, seed: int, start: date, drugs: list[Drug]) -> list[tuple[datetime, str, str]]:
    """Every message of patient ``index`` over one year from ``start``: (time, control id, ER7 text)."""
    rng = random.Random(f"{seed}:{index}")
    sex = rng.choice("FM")
    p = _Patient(
        index=index,
        mrn=f"S{index:07d}",
        family=rng.choice(_FAMILY),
        given=rng.choice(_GIVEN_F if sex == "F" else _GIVEN_M),
        sex=sex,
        birth=date(rng.randint(1935, 1990), rng.randint(1, 12), rng.randint(1, 28)),
        street=f"{rng.randint(10, 9999)} {rng.choice(_STREETS)}",
        phone=f"555{rng.randint(0, 9999):04d}",
        adherence=rng.choices(("on-time", "late", "gaps"), weights=(55, 30, 15))[0],
    )
    feed = _Feed(p)
    registered = datetime.combine(start, datetime.min.time()) + timedelta(hours=9, minutes=rng.randint(0, 59))
    feed.add(registered, "ADT^A04^ADT_A01", [f"EVN|A04|{_ts(registered)}", p.pid(), "PV1|1|O"])
    maintenance = [d for d in drugs if d.kind == "maintenance"]
    statins = {"atorvastatin", "simvastatin"}
    chosen = rng.sample(maintenance, rng.randint(2, min(8, len(maintenance))))
    if statins <= {d.key for d in chosen}:
        chosen = [d for d in chosen if d.key != "simvastatin"]
    extras = [d for d in drugs if d.kind != "maintenance" and rng.random() < 0.25]
    end = registered + timedelta(days=365)
    prescriber = rng.choice(_PRESCRIBERS)
    for n, drug in enumerate(chosen + extras):
        first = registered + timedelta(days=rng.randint(0, 20), hours=n)
        _prescription_history(feed, rng, drug, first, end, prescriber, f"{index:06d}{n:02d}")
    feed.messages.sort(key=lambda m: m[0])
    return feed.messages


def _prescription_history(feed: _Feed, rng: random.Random, drug: Drug, first: datetime, end: datetime,
                          prescriber: tuple[str, str, str], stem: str) -> None:
    p = feed.patient
    when = first
    version = 0
    one_off = drug.kind == "acute" or drug.schedule == "2"
    while when < end:
        version += 1
        rx = f"{stem}{version:02d}"
        written = when - timedelta(hours=2)
        feed.add(written, "RDE^O11^RDE_O11",
                 [p.pid(), *_order_segments(p, drug, rx, written, prescriber, drug.refills, 0, "NW")])
        for fill in range(1, drug.refills + 2):
            if when >= end:
                return
            remaining = drug.refills - (fill - 1)
            body = [p.pid(), *_order_segments(p, drug, rx, written, prescriber, remaining, fill - 1, "RE")]
            body.append(
                f"RXD|{fill}|{drug.ndc11}^{_e(drug.name)}^NDC^{drug.rxnorm}^{_e(drug.name)}^RXNORM|{_ts(when)}|"
                f"{drug.fill_qty}|{drug.fill_unit}|{drug.form}|{rx}|{remaining}" + "|" * 25 + ("N" if fill == 1 else "R")
            )
            feed.add(when, "RDS^O13^RDS_O13", body)
            if rng.random() < 0.4:
                pickup = when + timedelta(days=rng.randint(0, 2), hours=rng.randint(0, 6))
                slot = f"{_ts(pickup)}^{_ts(pickup + timedelta(minutes=10))}"
                feed.add(pickup - timedelta(days=1), "SIU^S12^SIU_S12", [
                    f"SCH|{rx}-{fill}^{PHARMACY}|{rx}-{fill}^{PHARMACY}|||||^Pickup|PICKUP^Medication pickup^LOCAL|10|MIN|"
                    f"^^^{slot}" + "|" * 14 + "Booked",
                    p.pid(), "RGS|1", f"AIL|1||PICKUP^1^^{PHARMACY}",
                ])
            if one_off:
                return
            step = drug.days_per_fill + (_delay(rng, p.adherence) if drug.kind != "prn" else rng.randint(10, 90))
            when += timedelta(days=max(1, step), minutes=rng.randint(-90, 90))
        if drug.kind != "maintenance":
            return


def rds_messages(count: int, seed: int = 7, start: date = date(2025, 1, 1)) -> list[str]:
    """The first ``count`` RDS^O13 messages of the feed (for benchmarks)."""
    drugs = load_drugs()
    out: list[str] = []
    index = 0
    while len(out) < count:
        index += 1
        out.extend(text for _, _, text in patient_feed(index, seed, start, drugs) if "|RDS^O13" in text[:120])
    return out[:count]


def write_feed(out: Path, patients: int, seed: int, start: date) -> Iterator[tuple[int, int]]:
    """Write ``P<mrn>.hl7`` (one patient's messages, in time order, CR terminated); yields (patient, messages)."""
    drugs = load_drugs()
    out.mkdir(parents=True, exist_ok=True)
    for index in range(1, patients + 1):
        messages = patient_feed(index, seed, start, drugs)
        (out / f"S{index:07d}.hl7").write_bytes("".join(text for _, _, text in messages).encode("utf-8"))
        yield index, len(messages)


@click.command("synth")
@click.option("--patients", "-n", type=click.IntRange(min=1), required=True, help="How many patients.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
@click.option("--seed", type=int, default=7, show_default=True, help="Same seed, same feed.")
@click.option("--start", type=click.DateTime(formats=["%Y-%m-%d"]), default="2025-01-01", show_default=True,
              help="First registration day; the feed covers the following year.")
def synth_command(patients: int, out: Path, seed: int, start: datetime) -> None:
    """Write a synthetic HL7 v2 pharmacy feed: one file per patient (ADT, RDE, RDS, SIU over a year)."""
    total = 0
    with click.progressbar(write_feed(out, patients, seed, start.date()), length=patients,
                           label="Writing patients", file=sys.stderr) as bar:
        for _, messages in bar:
            total += messages
    click.echo(f"{patients} patients, {total} messages in {out}")
