"""HL7 v2 messages written for the ingest tests: a dispense per patient, and broken ones."""

from __future__ import annotations

MSH = "MSH|^~\\&|PHARMSYS|RX01|MEDSYNC|HUB|20250105093000||RDS^O13^RDS_O13|{ctl}|P|2.5.1\r"
PID = "PID|1||{mrn}^^^RX01^MR||DOE^JANE||19600101|F\r"
ORC = "ORC|RE||{rx}^RX01||CM||||20250101120000|||1234567893^SMITH^ANN^^^^^^NPI^L^^^NPI\r"
RXE = "RXE||0071-0156-23^LIPITOR 20 MG TABLET^NDC|1||TAB|TAB|||G|30|TAB|5|||{rx}|4|1\r"
TQ1 = "TQ1|1||QD\r"
RXD = "RXD|{fill}|0071-0156-23^LIPITOR 20 MG TABLET^NDC|{date}|30|TAB|||4\r"


def dispense(n: int, *, fill: int = 1, ctl: str | None = None) -> bytes:
    """An RDS^O13 for patient MRN{n}, prescription RX{n}, fill ``fill``."""
    values = {"ctl": ctl or f"C{n}-{fill}", "mrn": f"MRN{n}", "rx": f"RX{n}", "fill": str(fill), "date": "20250105"}
    return "".join(s.format(**values) for s in (MSH, PID, ORC, RXE, TQ1, RXD)).encode()


UNPARSEABLE = b"this is not an HL7 message\r"
UNMAPPABLE = (MSH.format(ctl="BAD1") + "ORC|RE||RX9^RX01\r").encode()  # pharmacy message without RXE/RXD or PID
