"""Search execution (interop.store.search) on real SQLite and PostgreSQL databases.

The store is built by inserting rows into the schema tables with ``index_rows`` (the same rows the repository
writes), in a PostgreSQL schema of its own so other suites sharing the test database are untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest
from sqlalchemy import Engine, create_engine, insert, text, update

from interop.store.base import InvalidRequest, SearchResult
from interop.store.indexing import date_range, index_rows
from interop.store.schema import INDEX_TABLES, metadata, resource
from interop.store.search import match_rids, page_query, run_search

NDC = "http://hl7.org/fhir/sid/ndc"
MRN = "urn:oid:2.16.840.1.113883.19.5"
BASE = "http://localhost:8080/fhir"


@dataclass
class Store:
    engine: Engine
    dialect: str
    rids: dict[tuple[str, str], int]

    def put(self, res: dict[str, Any], *, deleted: bool = False) -> int:
        rtype, id = res["resourceType"], res["id"]
        updated = res.setdefault("meta", {}).setdefault("lastUpdated", "2026-11-26T10:00:00.000000+00:00")
        with self.engine.begin() as conn:
            rid = conn.execute(
                insert(resource).values(
                    rtype=rtype,
                    id=id,
                    version_id=1,
                    last_updated=updated,
                    deleted=deleted,
                    content=orjson.dumps(res).decode(),
                )
            ).inserted_primary_key[0]
            for kind, rows in index_rows(res).items():
                if rows:
                    conn.execute(insert(INDEX_TABLES[kind]), [{**row, "rid": rid} for row in rows])
        self.rids[(rtype, id)] = rid
        return int(rid)

    def delete(self, rtype: str, id: str) -> None:
        """Mark deleted but keep the index rows: the search itself must exclude deleted resources."""
        with self.engine.begin() as conn:
            conn.execute(
                update(resource).where(resource.c.rid == self.rids[(rtype, id)]).values(deleted=True)
            )

    def search(self, rtype: str | None, query: str, *, count: int = 100) -> SearchResult:
        with self.engine.connect() as conn:
            return run_search(
                conn,
                self.dialect,
                rtype,
                parse_qsl(query, keep_blank_values=True),
                default_count=count,
                max_count=500,
            )

    def ids(self, rtype: str | None, query: str) -> list[str]:
        result = self.search(rtype, query)
        assert result.next_cursor is None
        return [s.id for s in result.matches]

    def match(self, rtype: str, query: str) -> set[str]:
        with self.engine.connect() as conn:
            rids = match_rids(conn, self.dialect, rtype, parse_qsl(query))
        by_rid = {rid: key[1] for key, rid in self.rids.items()}
        return {by_rid[rid] for rid in rids}


def _engine(
    dialect: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if dialect == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('search') / 'store.db'}")
        metadata.create_all(engine)
        yield engine
        engine.dispose()
        return
    url = request.getfixturevalue("pg_url")
    schema = f"search_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _patient(id: str, family: str, given: str, mrn: str, birth: str, gender: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": id,
        "identifier": [{"system": MRN, "value": mrn}],
        "name": [{"family": family, "given": [given]}],
        "birthDate": birth,
        "gender": gender,
        "telecom": [{"system": "phone", "value": f"555-{mrn}"}],
        "meta": {"lastUpdated": f"2026-11-2{mrn[0]}T10:00:00.000000+00:00"},
    }


WHEN = [
    "2024-05-01T09:00:00Z",
    "2024-05-01T23:30:00-05:00",  # 2024-05-02T04:30Z
    "2024-05-02",
    "2024-05",
    "2024",
    "2024-04-30T23:59:59Z",
]


def _dispense(n: int) -> dict[str, Any]:
    patient = ["p1", "p2", "p3"][n % 3]
    res: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "id": f"d{n:02d}",
        "status": "completed" if n % 4 else "in-progress",
        "subject": {"reference": f"Patient/{patient}"},
        "authorizingPrescription": [{"reference": f"MedicationRequest/rx{n % 3 + 1}"}],
        "medicationCodeableConcept": {
            "coding": [{"system": NDC, "code": f"00000-0000-{n % 5:02d}", "display": f"Drug {n % 5}"}]
        },
        "quantity": {"value": 30 + n * 0.5, "system": "http://unitsofmeasure.org", "code": "TAB"},
        "daysSupply": {"value": 30, "unit": "d"},
    }
    if n % 7 != 6:
        res["whenHandedOver"] = WHEN[n % len(WHEN)]
    return res


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    gen = _engine(request.param, request, tmp_path_factory)
    s = _fill(Store(next(gen), request.param, {}))
    yield s
    next(gen, None)


def _fill(s: Store) -> Store:
    s.put(_patient("p1", "Smith", "John", "123", "1980-05-01", "male"))
    s.put(_patient("p2", "Smíth", "Ann", "456", "1990", "female"))
    s.put(
        _patient("p3", "Jones", "Émile", "789", "1980-05", "other")
        | {
            "generalPractitioner": [
                {"reference": f"{BASE}/Practitioner/pr1"},
                {"reference": "https://elsewhere.org/fhir2/Practitioner/9"},
            ]
        }
    )
    s.put({"resourceType": "Practitioner", "id": "pr1", "name": [{"family": "Welby", "given": ["Marcus"]}]})
    for i, patient in ((1, "p1"), (2, "p2"), (3, "p1")):
        s.put(
            {
                "resourceType": "MedicationRequest",
                "id": f"rx{i}",
                "status": "active" if i != 3 else "stopped",
                "intent": "order",
                "subject": {"reference": f"Patient/{patient}"},
                "medicationCodeableConcept": {"coding": [{"system": NDC, "code": f"00000-0000-0{i}"}]},
                "authoredOn": f"2024-0{i}-15",
            }
        )
    for n in range(24):
        s.put(_dispense(n))
    s.put(_dispense(99) | {"id": "dgone", "subject": {"reference": "Patient/p1"}, "status": "completed"})
    s.delete("MedicationDispense", "dgone")
    s.put(
        {
            "resourceType": "MedicationRequest",
            "id": "rxgone",
            "status": "active",
            "intent": "order",
            "subject": {"reference": "Patient/p3"},
            "medicationCodeableConcept": {"text": "x"},
        }
    )
    s.put(
        _dispense(98) | {"id": "d98", "authorizingPrescription": [{"reference": "MedicationRequest/rxgone"}]}
    )
    s.delete("MedicationRequest", "rxgone")
    s.put(
        {
            "resourceType": "Appointment",
            "id": "a1",
            "status": "booked",
            "start": "2024-06-01T10:00:00Z",
            "participant": [
                {"actor": {"reference": "Patient/p1"}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/pr1"}, "status": "accepted"},
            ],
        }
    )
    s.put(
        {
            "resourceType": "Encounter",
            "id": "e1",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/p1"},
            "length": {"value": 5.4, "system": "http://unitsofmeasure.org", "code": "min"},
            "period": {"start": "2024-04-20", "end": "2024-05-01T12:00:00Z"},
        }
    )
    s.put(
        {
            "resourceType": "Encounter",
            "id": "e2",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": "Patient/p2"},
            "length": {"value": 5.46, "system": "http://unitsofmeasure.org", "code": "min"},
            "period": {"start": "2024-05-01T06:00:00Z"},
        }
    )
    return s


DISPENSES = [_dispense(n) for n in range(24)] + [_dispense(98) | {"id": "d98"}]


def _expected(pred: Any) -> set[str]:
    return {d["id"] for d in DISPENSES if pred(d)}


# ------------------------------------------------------------------------------------ tokens
def test_token_forms(store: Store) -> None:
    assert set(store.ids("MedicationDispense", "status=completed")) == _expected(
        lambda d: d["status"] == "completed"
    )
    code = "00000-0000-02"
    has = _expected(lambda d: d["medicationCodeableConcept"]["coding"][0]["code"] == code)
    assert set(store.ids("MedicationDispense", f"code={NDC}|{code}")) == has
    assert set(store.ids("MedicationDispense", f"code={code}")) == has
    assert store.ids("MedicationDispense", f"code=http://other|{code}") == []
    assert set(store.ids("MedicationDispense", f"code={NDC}|")) == _expected(lambda d: True)
    assert store.ids("MedicationDispense", f"code=|{code}") == []  # our codings all have a system
    assert set(store.ids("Patient", "phone=555-123")) == {"p1"}
    assert set(store.ids("Patient", f"identifier={MRN}|456")) == {"p2"}
    assert set(store.ids("Patient", "gender=male,female")) == {"p1", "p2"}


def test_token_not_and_repeated_and(store: Store) -> None:
    assert set(store.ids("MedicationDispense", "status:not=completed")) == _expected(
        lambda d: d["status"] != "completed"
    )
    both = store.ids("MedicationDispense", "status=completed&subject=Patient/p2")
    assert set(both) == _expected(
        lambda d: d["status"] == "completed" and d["subject"]["reference"] == "Patient/p2"
    )
    assert store.ids("MedicationDispense", "status=completed&status=in-progress") == []


def test_id_and_deleted(store: Store) -> None:
    assert set(store.ids("MedicationDispense", "_id=d01,d02,dgone")) == {"d01", "d02"}
    assert store.ids("MedicationDispense", "_id=dgone") == []
    assert "dgone" not in store.ids("MedicationDispense", "patient=p1")
    assert set(store.ids("Patient", "_id:not=p1")) == {"p2", "p3"}


# ------------------------------------------------------------------------------------ references
def test_reference_forms(store: Store) -> None:
    p1 = _expected(lambda d: d["subject"]["reference"] == "Patient/p1")
    assert set(store.ids("MedicationDispense", "patient=p1")) == p1
    assert set(store.ids("MedicationDispense", "patient=Patient/p1")) == p1
    assert set(store.ids("MedicationDispense", f"patient={BASE}/Patient/p1")) == p1
    assert set(store.ids("MedicationDispense", "subject:Patient=p1")) == p1
    assert set(store.ids("Patient", "general-practitioner=Practitioner/pr1")) == {"p3"}
    other = "https://elsewhere.org/fhir2/Practitioner/9"
    assert set(store.ids("Patient", f"general-practitioner={other}")) == {"p3"}
    assert store.ids("Patient", "general-practitioner=9") == []
    with pytest.raises(InvalidRequest) as err:
        store.search("MedicationDispense", "patient=Practitioner/pr1")
    assert err.value.expression == ["patient"]


def test_chaining(store: Store) -> None:
    p1 = _expected(lambda d: d["subject"]["reference"] == "Patient/p1")
    assert set(store.ids("MedicationDispense", f"patient.identifier={MRN}|123")) == p1
    smiths = _expected(lambda d: d["subject"]["reference"] in ("Patient/p1", "Patient/p2"))
    assert set(store.ids("MedicationDispense", "subject:Patient.name=smith")) == smiths
    assert set(store.ids("MedicationDispense", "patient.birthdate=1980-05-01&status=completed")) == _expected(
        lambda d: d["subject"]["reference"] == "Patient/p1" and d["status"] == "completed"
    )
    assert set(store.ids("Appointment", "actor:Practitioner.name=welby")) == {"a1"}
    with pytest.raises(InvalidRequest):
        store.search("MedicationDispense", "status.code=x")


# ------------------------------------------------------------------------------------ strings
def test_string_matching(store: Store) -> None:
    assert set(store.ids("Patient", "name=smi")) == {"p1", "p2"}  # accent- and case-insensitive
    assert set(store.ids("Patient", "family=SMÍTH")) == {"p1", "p2"}
    assert set(store.ids("Patient", "family:exact=Smíth")) == {"p2"}
    assert store.ids("Patient", "family:exact=smíth") == []
    assert set(store.ids("Patient", "name:contains=mil")) == {"p3"}
    assert store.ids("Patient", "name=mil") == []
    assert set(store.ids("Patient", "given=emile,ann")) == {"p2", "p3"}
    assert store.ids("Patient", "name:contains=%") == []  # LIKE wildcards are literal


# ------------------------------------------------------------------------------------ dates
def _date_oracle(prefix: str, value: str) -> set[str]:
    sl, sh = date_range(value) or (0.0, 0.0)
    out = set()
    for d in DISPENSES:
        if "whenHandedOver" not in d:
            continue
        lo, hi = date_range(d["whenHandedOver"]) or (0.0, 0.0)
        ok = {
            "eq": lo >= sl and hi <= sh,
            "ne": not (lo >= sl and hi <= sh),
            "gt": hi > sh,
            "lt": lo < sl,
            "ge": hi > sh or (lo >= sl and hi <= sh),
            "le": lo < sl or (lo >= sl and hi <= sh),
            "sa": lo > sh,
            "eb": hi < sl,
        }[prefix]
        if ok:
            out.add(d["id"])
    return out


@pytest.mark.parametrize("prefix", ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"])
@pytest.mark.parametrize(
    "value", ["2024-05-01", "2024-05", "2024", "2024-05-01T09:00:00Z", "2024-05-02T04:30:00Z"]
)
def test_date_prefixes(store: Store, prefix: str, value: str) -> None:
    got = set(store.ids("MedicationDispense", f"whenhandedover={prefix}{value}"))
    assert got == _date_oracle(prefix, value)


def test_date_precision_edges(store: Store) -> None:
    one = lambda w: _expected(lambda d: d.get("whenHandedOver") == w)  # noqa: E731
    # A day covers all its instants; a time with offset is converted to UTC.
    assert set(store.ids("MedicationDispense", "whenhandedover=2024-05-01")) == one(WHEN[0])
    assert set(store.ids("MedicationDispense", "whenhandedover=2024-05-02")) == one(WHEN[1]) | one(WHEN[2])
    assert set(store.ids("MedicationDispense", "whenhandedover=sa2024-05-01")) == one(WHEN[1]) | one(WHEN[2])
    # The whole-year value is neither before nor after a day inside it.
    assert not one(WHEN[4]) & set(store.ids("MedicationDispense", "whenhandedover=eb2024-05-01"))
    assert not one(WHEN[4]) & set(store.ids("MedicationDispense", "whenhandedover=sa2024-05-01"))
    assert set(store.ids("MedicationDispense", "whenhandedover=eb2024-05-01")) == one(WHEN[5])
    # :missing
    assert set(store.ids("MedicationDispense", "whenhandedover:missing=true")) == _expected(
        lambda d: "whenHandedOver" not in d
    )
    assert set(store.ids("MedicationDispense", "whenhandedover:missing=false")) == _expected(
        lambda d: "whenHandedOver" in d
    )
    assert set(store.ids("Patient", "birthdate=1980-05")) == {"p1", "p3"}
    assert set(store.ids("Patient", "birthdate=1980-05-01")) == {"p1"}


def test_date_prefixes_on_periods(store: Store) -> None:
    """FHIR R4 §3.1.1.4.4 read literally: ge is "after the value, or inside it", so e1, which starts before
    2024-05-01 and ends inside it, is neither ge nor le; e2 is open-ended and so is never inside a day."""
    assert store.ids("Encounter", "date=ge2024-05-01") == ["e2"]
    assert store.ids("Encounter", "date=le2024-05-01") == ["e1"]
    assert store.ids("Encounter", "date=gt2024-05-01") == ["e2"]
    assert store.ids("Encounter", "date=lt2024-05-01") == ["e1"]
    assert store.ids("Encounter", "date=eq2024-05-01") == []
    assert set(store.ids("Encounter", "date=ap2024-05-01")) == {"e1", "e2"}
    assert store.ids("Encounter", "date=eb2024-05-01") == []
    assert store.ids("Encounter", "date=sa2024-04-30") == ["e2"]
    assert store.ids("Encounter", "date=eq2024") == ["e1"]


def test_last_updated(store: Store) -> None:
    assert store.ids("Patient", "_lastUpdated=2026-11-24") == ["p2"]
    assert set(store.ids("Patient", "_lastUpdated=ge2026-11-24")) == {"p2", "p3"}
    assert store.ids("Patient", "_lastUpdated=gt2026-11-27T10:00:00Z") == []
    assert store.ids("Patient", "_sort=-_lastUpdated") == ["p3", "p2", "p1"]
    assert store.ids("Patient", "_sort=_lastUpdated") == ["p1", "p2", "p3"]


def test_missing_on_every_type(store: Store) -> None:
    assert set(store.ids("Patient", "general-practitioner:missing=true")) == {"p1", "p2"}
    assert set(store.ids("Patient", "general-practitioner:missing=false")) == {"p3"}
    assert store.ids("Patient", "identifier:missing=true") == []
    assert set(store.ids("Practitioner", "identifier:missing=true")) == {"pr1"}
    assert set(store.ids("Patient", "address:missing=true")) == {"p1", "p2", "p3"}
    assert set(store.ids("Encounter", "length:missing=false")) == {"e1", "e2"}
    assert set(store.ids("MedicationDispense", "whenhandedover:missing=true")) == {"d06", "d13", "d20"}


def test_chain_with_negation_inside(store: Store) -> None:
    assert set(store.ids("MedicationDispense", "patient.gender:not=male")) == _expected(
        lambda d: d["subject"]["reference"] in ("Patient/p2", "Patient/p3")
    )


def test_sqlite_plans_use_the_lookup_indexes(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'plan.db'}")
    metadata.create_all(engine)
    store = _fill(Store(engine, "sqlite", {}))
    with store.engine.connect() as conn:
        sql = page_query(
            conn, "sqlite", "MedicationDispense", [("patient", "p1"), ("status", "completed")], count=20
        )
        plan = " | ".join(row[-1] for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
        assert "ix_reference_lookup" in plan and "ix_token_rid" in plan
        assert "SCAN idx_" not in plan and "SCAN resource" not in plan
        sql = page_query(conn, "sqlite", "Patient", [("name", "smi")], count=20)
        plan = " | ".join(row[-1] for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
        assert "ix_string_lookup (rtype=? AND param=? AND norm>? AND norm<?)" in plan


# ------------------------------------------------------------------------------------ quantities
def test_quantity(store: Store) -> None:
    assert set(store.ids("Encounter", "length=5.4")) == {"e1"}  # 5.46 is outside [5.35, 5.45)
    assert set(store.ids("Encounter", "length=5")) == {"e1", "e2"}  # [4.5, 5.5)
    assert set(store.ids("Encounter", "length=gt5.4")) == {"e2"}
    assert set(store.ids("Encounter", "length=le5.46|http://unitsofmeasure.org|min")) == {"e1", "e2"}
    assert store.ids("Encounter", "length=5.4||h") == []
    assert store.ids("Encounter", "length=5.4|http://other.org|min") == []
    assert store.ids("Encounter", "length=5.4||min") == ["e1"]
    assert set(store.ids("Encounter", "length=ne5.4")) == {"e2"}


# ------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("query", "expression"),
    [
        ("nonsense=1", "nonsense"),
        ("whenhandedover=2024-13-01", "whenhandedover"),
        ("whenhandedover=xx2024", "whenhandedover"),
        ("status:exact=completed", "status:exact"),
        ("whenhandedover:missing=maybe", "whenhandedover:missing"),
        ("_count=-1", "_count"),
        ("_sort=medication", "_sort"),
        ("_cursor=!!!", "_cursor"),
        ("_include=MedicationDispense:status", "_include"),
        ("quantity=abc", None),
    ],
)
def test_bad_parameters(store: Store, query: str, expression: str | None) -> None:
    with pytest.raises(InvalidRequest) as err:
        store.search("MedicationDispense", query)
    if expression is not None:
        assert err.value.expression == [expression]


# ------------------------------------------------------------------------------------ paging and sort
def _walk(store: Store, rtype: str, query: str, count: int) -> list[list[str]]:
    """Every page, following next cursors; a cursor that does not advance fails instead of looping."""
    pages: list[list[str]] = []
    cursor = None
    for _ in range(len(DISPENSES) + 2):
        q = query + (f"&_cursor={cursor}" if cursor else "")
        result = store.search(rtype, q, count=count)
        pages.append([s.id for s in result.matches])
        cursor = result.next_cursor
        if cursor is None:
            return pages
    raise AssertionError(f"paging did not end: {pages[:5]}")


@pytest.mark.parametrize("sort", ["", "whenhandedover", "-whenhandedover", "-_id", "status,-_id"])
def test_keyset_paging_walks_everything_once(store: Store, sort: str) -> None:
    query = f"_sort={sort}" if sort else ""
    full = store.ids("MedicationDispense", query)
    pages = _walk(store, "MedicationDispense", query, 3)
    flat = [i for page in pages for i in page]
    assert flat == full
    assert len(set(flat)) == len(flat) == len(DISPENSES)
    assert all(len(p) == 3 for p in pages[:-1])
    if sort in ("whenhandedover", "-whenhandedover"):

        def key(i: str) -> float:
            w = next(d for d in DISPENSES if d["id"] == i).get("whenHandedOver")
            span = date_range(w) if w else None
            return span[0] if span and sort[0] != "-" else (-span[1] if span else float("inf"))

        keys = [key(i) for i in flat]
        assert keys == sorted(keys)
        assert all(
            next(d for d in DISPENSES if d["id"] == i).get("whenHandedOver") is None for i in flat[-3:]
        )
    if sort == "-_id":
        assert flat == sorted(flat, reverse=True)
    if sort == "status,-_id":
        expected = sorted(flat, key=lambda i: i)[::-1]
        expected = sorted(expected, key=lambda i: next(d for d in DISPENSES if d["id"] == i)["status"])
        assert flat == expected


def test_string_sort_descending(store: Store) -> None:
    # Strings sort by their folded form: "Émile" as "emile", between "ann" and "john".
    assert store.ids("Patient", "_sort=-given") == ["p1", "p3", "p2"]
    assert store.ids("Patient", "_sort=given") == ["p2", "p3", "p1"]


def test_total_and_count(store: Store) -> None:
    n = len(_expected(lambda d: d["status"] == "completed"))
    page = store.search("MedicationDispense", "status=completed&_count=2")
    assert len(page.matches) == 2 and page.total is None and page.next_cursor
    page = store.search("MedicationDispense", "status=completed&_count=2&_total=accurate")
    assert page.total == n
    page = store.search("MedicationDispense", "status=completed&_count=0")
    assert page.matches == [] and page.total == n
    page = store.search("MedicationDispense", "status=completed&_summary=count")
    assert page.matches == [] and page.total == n
    page = store.search("MedicationDispense", "status=completed")
    assert page.total == n  # the whole result fit in one page: the total is free
    page = store.search("MedicationDispense", "status=completed&_count=1000")
    assert len(page.matches) == n


def test_cursor_of_another_sort_is_refused(store: Store) -> None:
    cursor = store.search("MedicationDispense", "_count=2&_sort=-_id").next_cursor
    with pytest.raises(InvalidRequest):
        store.search("MedicationDispense", f"_count=2&_sort=_id&_cursor={cursor}")


def test_applied(store: Store) -> None:
    result = store.search("MedicationDispense", "status=completed&_count=1000&_elements=id&_summary=true")
    assert result.applied == [
        ("status", "completed"),
        ("_count", "500"),
        ("_elements", "id"),
        ("_summary", "true"),
    ]


# ------------------------------------------------------------------------------------ includes
def test_include_and_revinclude(store: Store) -> None:
    result = store.search("MedicationDispense", "patient=p1&_include=MedicationDispense:prescription")
    included = {(s.resource_type, s.id) for s in result.includes}
    assert included == {("MedicationRequest", f"rx{n % 3 + 1}") for n in range(24) if n % 3 == 0}
    assert len(result.includes) == len(included)  # deduplicated
    deleted_target = store.search("MedicationDispense", "_id=d98&_include=MedicationDispense:prescription")
    assert deleted_target.includes == []  # rxgone is deleted

    result = store.search("MedicationRequest", "_id=rx1&_revinclude=MedicationDispense:prescription")
    assert {s.id for s in result.includes} == _expected(
        lambda d: d["authorizingPrescription"][0]["reference"] == "MedicationRequest/rx1"
    )
    result = store.search(
        "Patient",
        "_id=p1&_revinclude=MedicationDispense:patient&_revinclude=MedicationRequest:patient"
        "&_revinclude=Appointment:patient&_revinclude=Appointment:actor",
    )
    got = {(s.resource_type, s.id) for s in result.includes}
    assert ("MedicationDispense", "dgone") not in got
    assert got == {
        ("MedicationDispense", i) for i in _expected(lambda d: d["subject"]["reference"] == "Patient/p1")
    } | {
        ("MedicationRequest", "rx1"),
        ("MedicationRequest", "rx3"),
        ("Appointment", "a1"),
    }
    result = store.search("Appointment", "_id=a1&_include=Appointment:actor:Practitioner")
    assert [(s.resource_type, s.id) for s in result.includes] == [("Practitioner", "pr1")]


def test_match_rids_and_all_types(store: Store) -> None:
    assert store.match("Patient", f"identifier={MRN}|123&_count=1") == {"p1"}
    assert store.match("MedicationDispense", "patient=p1&status=completed") == _expected(
        lambda d: d["subject"]["reference"] == "Patient/p1" and d["status"] == "completed"
    )
    everything = store.search(None, "_id=p1,pr1,a1")
    assert {(s.resource_type, s.id) for s in everything.matches} == {
        ("Patient", "p1"),
        ("Practitioner", "pr1"),
        ("Appointment", "a1"),
    }
    typed = store.search(None, "_id=p1,pr1,a1&_type=Patient,Practitioner")
    assert {s.id for s in typed.matches} == {"p1", "pr1"}
    with pytest.raises(InvalidRequest):
        store.search(None, "status=completed")
