"""A B2 reversal built from the B1 it reverses: same BIN, PCN, pharmacy and date of service 401-D1.

Payers match a reversal to the paid claim by Rx number 402-D2 and date of service, so both are copied, never
re-derived (research/ncpdp.md §1.8); the Claim segment keeps 455-EM, 402-D2, 436-E1, 407-D7 and 403-D3.
"""

from __future__ import annotations

import dataclasses

from adapters.telecom.errors import TelecomError
from adapters.telecom.model import RequestHeader, Segment, Transaction, Transmission

REVERSAL_CLAIM_FIELDS = ("EM", "D2", "E1", "D7", "D3")
"""Claim (AM07) fields a B2 carries: Rx number qualifier and number, product qualifier and id, fill number."""
REVERSAL_INSURANCE_FIELDS = ("C2", "C1")
"""Insurance (AM04) fields a B2 carries: cardholder id 302-C2 and group id 301-C1."""


def reversal(billing: Transmission) -> Transmission:
    """The B2 for every claim of ``billing`` (a B1), with its Insurance segment (AM04) when it has one."""
    header = billing.header
    if not isinstance(header, RequestHeader) or header.transaction_code != "B1":
        raise TelecomError("a reversal is built from a B1 billing request", 8, field="103-A3")
    transactions = []
    for number, transaction in enumerate(billing.transactions, 1):
        claim = transaction.segment("07")
        if claim is None or not claim.get("D2"):
            raise TelecomError(f"transaction {number} has no Claim segment (AM07) with a 402-D2 Rx number",
                               segment="07", field="402-D2")
        kept = [(fid, value) for fid, value in claim.fields if fid in REVERSAL_CLAIM_FIELDS]
        transactions.append(Transaction([Segment("07", kept)]))
    insurance = billing.segment("04")
    top = []
    if insurance is not None:
        top.append(Segment("04", [(f, v) for f, v in insurance.fields if f in REVERSAL_INSURANCE_FIELDS]))
    return Transmission(dataclasses.replace(header, transaction_code="B2"), top, transactions)
