"""The conversion front door: format detection, the CONVERTERS registry and ``interop convert``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from interop.cli import main
from interop.ingest.convert import CONVERTERS, ConversionError, convert, detect_format
from tests.test_hl7v2_map import SIU, rde, rds


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {
        "rde": tmp_path / "order.hl7",
        "rds": tmp_path / "fill.hl7",
        "bad": tmp_path / "bad.hl7",
        "batch": tmp_path / "batch.hl7",
        "junk": tmp_path / "notes.txt",
    }
    out["rde"].write_text(rde().replace("\r", "\n"))
    out["rds"].write_bytes(rds().encode())
    out["bad"].write_text(rds(dqty="lots").replace("\r", "\r\n"))
    out["batch"].write_text(
        "FHS|^~\\&|PHARMSYS\rBHS|^~\\&|PHARMSYS\r" + rds() + SIU.format(event="S12", sch25="") + "BTS|2\rFTS|1\r"
    )
    out["junk"].write_text("hello")
    return out


def test_detect_format() -> None:
    assert detect_format(b"\xef\xbb\xbfMSH|^~\\&|") == "hl7v2"
    assert detect_format(b"\x0bFHS|^~\\&|") == "hl7v2"
    assert detect_format(b'<?xml version="1.0"?><Message/>') == "script"
    assert detect_format(b"610066D0B1          1011234567890     20250105") == "telecom"
    assert detect_format(b"D0B11A011234567890     20250105\x1e\x1cAM20") == "telecom"
    with pytest.raises(ConversionError, match="unknown format"):
        detect_format(b"hello")


def test_convert_returns_one_bundle_per_message() -> None:
    bundles = convert((rds() + rde().replace("|M1|", "|M7|")).encode())
    assert [b["type"] for b in bundles] == ["transaction", "transaction"]
    with pytest.raises(ConversionError) as caught:
        convert(rds(dqty="lots").encode())
    assert caught.value.line == 7 and caught.value.location == "RXD-4"
    with pytest.raises(ConversionError, match="no converter registered for 'x12'"):
        convert(b"ISA*00*", "x12")


def test_registry_is_a_plain_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(data: bytes, strict: bool) -> list[dict[str, object]]:
        if data == b"bad":
            raise ValueError("fake says no")
        return [{"resourceType": "Bundle", "type": "transaction", "entry": []}]

    monkeypatch.setitem(CONVERTERS, "telecom", fake)
    assert convert(b"D0B1", "telecom") == [{"resourceType": "Bundle", "type": "transaction", "entry": []}]
    with pytest.raises(ConversionError, match="fake says no"):
        convert(b"bad", "telecom")


def test_one_input_prints_one_pretty_bundle(files: dict[str, Path]) -> None:
    result = CliRunner().invoke(main, ["convert", str(files["rds"])])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("{\n  ")
    bundle = json.loads(result.stdout)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "MedicationDispense" in kinds and "MedicationRequest" in kinds


def test_several_inputs_print_ndjson(files: dict[str, Path]) -> None:
    result = CliRunner().invoke(main, ["convert", str(files["rde"]), str(files["batch"]), "--from", "hl7v2"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    kinds = [[e["resource"]["resourceType"] for e in json.loads(ln)["entry"]][-1] for ln in lines]
    assert kinds == ["MedicationRequest", "MedicationDispense", "Appointment"]


def test_failing_file_is_named_and_others_still_convert(files: dict[str, Path]) -> None:
    result = CliRunner().invoke(main, ["convert", str(files["bad"]), str(files["rds"]), str(files["junk"])])
    assert result.exit_code == 1
    assert f"{files['bad']}, line 7, RXD-4: 'lots' is not a number" in result.stderr
    assert f"{files['junk']}, byte 0: unknown format" in result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert json.loads(result.stdout)["type"] == "transaction"


def test_folder_input_and_strict(files: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "feed"
    folder.mkdir()
    (folder / "a.hl7").write_bytes(files["rds"].read_bytes())
    (folder / "b.hl7").write_bytes(files["rde"].read_bytes())
    result = CliRunner().invoke(main, ["convert", str(folder)])
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 2
    adt = tmp_path / "adt.hl7"
    adt.write_text(
        "MSH|^~\\&|A|B|C|D|20250105||ADT^A01^ADT_A01|1|P|2.5\rEVN|A01|20250105\r"
        "PID|1||MRN1^^^HOSP^MR||DOE^JANE\rPV1|1|O\r"
    )
    assert CliRunner().invoke(main, ["convert", "--strict", str(adt)]).exit_code == 0
    adt.write_bytes(adt.read_bytes().replace(b"EVN|A01|20250105\r", b""))
    strict = CliRunner().invoke(main, ["convert", "--strict", str(adt)])
    assert strict.exit_code == 1
    assert f"{adt}, EVN: message grammar (2.5): Missing required child ADT_A01.EVN" in strict.stderr
