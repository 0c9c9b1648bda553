"""The ingest pipeline on SQLite and PostgreSQL: commit before AA, idempotent resends, dead letters."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from interop.cli import main
from interop.ingest.convert import CONVERTERS
from interop.ingest.deadletter import DEAD_LETTER, TASK_CODE_SYSTEM, read_dead_letter
from interop.ingest.mllp import ack_code
from interop.ingest.pipeline import Ingestor
from interop.store import SqlRepository
from tests.ingest_messages import UNMAPPABLE, UNPARSEABLE, dispense
from tests.storerepo import repo, row_counts

__all__ = ["repo"]


def dispenses(r: SqlRepository) -> int:
    return len(r.search("MedicationDispense", [("_count", "1000")]).matches)


def test_accepted_message_is_stored_before_its_aa(repo: SqlRepository) -> None:
    outcome = Ingestor(repo).ingest(dispense(1), source="test")
    assert outcome.code == "AA"
    assert outcome.ack is not None and ack_code(outcome.ack) == "AA"
    assert dispenses(repo) == 1
    stored = repo.search("MedicationDispense", [])
    request_ref = stored.matches[0].resource()["authorizingPrescription"][0]["reference"]
    assert repo.read(*request_ref.split("/")).resource()["resourceType"] == "MedicationRequest"


def test_resent_message_updates_and_never_duplicates(repo: SqlRepository) -> None:
    ingestor = Ingestor(repo)
    for _ in range(3):
        assert ingestor.ingest(dispense(1)).accepted
    assert dispenses(repo) == 1
    assert len(repo.search("Patient", []).matches) == 1
    assert row_counts(repo)["resource"] == row_counts(repo)["resource"]  # stable read
    assert ingestor.ingest(dispense(1, fill=2)).accepted
    assert dispenses(repo) == 2


def test_unparseable_message_is_rejected_and_kept(repo: SqlRepository) -> None:
    outcome = Ingestor(repo).ingest(UNPARSEABLE, source="feed-a", fmt="hl7v2")
    assert outcome.code == "AR"
    assert outcome.ack is not None and ack_code(outcome.ack) == "AR"
    assert outcome.dead_letter is not None
    letter = read_dead_letter(repo.read("Task", outcome.dead_letter).resource())
    assert letter.data == UNPARSEABLE
    assert letter.status == "failed" and letter.source == "feed-a" and letter.reason


def test_unmappable_message_gets_ae_with_err_and_is_kept(repo: SqlRepository) -> None:
    outcome = Ingestor(repo).ingest(UNMAPPABLE, source="feed-b")
    assert outcome.code in ("AE", "AR")
    assert outcome.ack is not None
    assert b"\rERR|" in outcome.ack
    assert outcome.dead_letter is not None
    assert read_dead_letter(repo.read("Task", outcome.dead_letter).resource()).data == UNMAPPABLE
    # the same bad message again keeps one dead letter, not two
    again = Ingestor(repo).ingest(UNMAPPABLE, source="feed-b")
    assert again.dead_letter == outcome.dead_letter
    found = repo.search("Task", [("code", f"{TASK_CODE_SYSTEM}|{DEAD_LETTER}")]).matches
    assert [s.id for s in found] == [outcome.dead_letter]


def test_group_with_a_bad_message_still_stores_the_good_ones(repo: SqlRepository) -> None:
    outcomes = Ingestor(repo).ingest_many([dispense(1), UNMAPPABLE, dispense(2), UNPARSEABLE], fmt="hl7v2")
    assert [o.code == "AA" for o in outcomes] == [True, False, True, False]
    assert dispenses(repo) == 2


def _patient_bundle(data: bytes, strict: bool) -> list[dict[str, object]]:
    """A test converter: ``good:N`` → a Patient PUT; anything else → a transaction with a dangling urn:uuid."""
    text = data.decode()
    if text.startswith("good:"):
        entry = {"resource": {"resourceType": "Patient", "id": f"p{text[5:]}"},
                 "request": {"method": "PUT", "url": f"Patient/p{text[5:]}"}}
    else:
        entry = {"fullUrl": "urn:uuid:a", "resource": {"resourceType": "Patient", "link": [
            {"other": {"reference": "urn:uuid:missing"}, "type": "seealso"}]},
            "request": {"method": "POST", "url": "Patient"}}
    return [{"resourceType": "Bundle", "type": "transaction", "entry": [entry]}]


def test_store_refusal_inside_a_group_falls_back_to_one_transaction_each(
    repo: SqlRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(CONVERTERS, "testfmt", _patient_bundle)
    before = row_counts(repo)["resource"]
    outcomes = Ingestor(repo).ingest_many([b"good:1", b"dangling", b"good:2"], fmt="testfmt")
    assert [o.code for o in outcomes] == ["AA", "AE", "AA"]
    assert "urn:uuid:missing" in outcomes[1].reason
    assert {s.id for s in repo.search("Patient", []).matches} == {"p1", "p2"}
    # two patients and one dead-letter Task: the refused Bundle wrote nothing
    assert row_counts(repo)["resource"] == before + 3
    assert outcomes[1].dead_letter is not None


def test_ingest_command_names_failing_files_and_keeps_them(tmp_path, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "feed").mkdir()
    (tmp_path / "feed" / "a.hl7").write_bytes(dispense(1))
    (tmp_path / "feed" / "b.hl7").write_bytes(dispense(2))
    (tmp_path / "feed" / "broken.hl7").write_bytes(UNMAPPABLE)
    runner = CliRunner()
    result = runner.invoke(main, ["ingest", str(tmp_path / "feed"), "--db", sqlite_url])
    assert result.exit_code == 1
    assert "broken.hl7" in result.stderr and "dead letter" in result.stderr
    assert "3 files: 2 stored" in result.stdout
    listed = runner.invoke(main, ["deadletters", "list", "--db", sqlite_url])
    assert listed.exit_code == 0 and "broken.hl7" in listed.stdout
    task_id = listed.stdout.split()[0]
    shown = runner.invoke(main, ["deadletters", "show", task_id, "--raw", "--db", sqlite_url])
    assert shown.stdout_bytes == UNMAPPABLE
    still = runner.invoke(main, ["deadletters", "replay", "--all", "--db", sqlite_url])
    assert still.exit_code == 1 and "still failing" in still.stderr


def test_replay_after_fix_completes_the_dead_letter(repo: SqlRepository, sqlite_url: str) -> None:
    from interop.ingest.deadletter import dead_letter_task, resolved

    task = dead_letter_task(dispense(7), fmt="hl7v2", source="old-mapping", reason="mapping said no")
    repo.update(task)
    ingestor = Ingestor(repo)
    letter = read_dead_letter(repo.read("Task", task["id"]).resource())
    assert ingestor.ingest(letter.data, fmt=letter.fmt).accepted
    repo.update(resolved(repo.read("Task", task["id"]).resource()))
    assert repo.read("Task", task["id"]).resource()["status"] == "completed"
    assert dispenses(repo) == 1
