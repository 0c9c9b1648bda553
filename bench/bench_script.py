"""SCRIPT NewRx → FHIR throughput (documents/s, single core), against two baselines run in the same process.

Baseline "validated": the same parse and mapping, then the Bundle validated through the fhir.resources R4B
pydantic models (what validating every internal resource costs). Baseline "generic": an xmltodict-style
generic parse (lxml.objectify → nested dict, no mapping at all), the usual first step of a hand mapping.

    .venv/bin/python -m bench.bench_script            # 3,000 documents
    .venv/bin/python -m bench.bench_script --n 20000  # the goal: >= 5,000 NewRx/s
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from lxml import objectify

from adapters.script import to_fhir

GOAL = 5_000

TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<Message xmlns="http://www.ncpdp.org/schema/SCRIPT" DatatypesVersion="20170715" TransportVersion="20170715"
 TransactionDomain="SCRIPT" TransactionVersion="20170715" StructuresVersion="20170715" ECLVersion="20170715">
 <Header>
  <To Qualifier="P">{ncpdp}</To><From Qualifier="D">6128890368017</From>
  <MessageID>BENCH-MSG-{n}</MessageID><SentTime>2026-11-26T09:00:00Z</SentTime>
  <SenderSoftware><SenderSoftwareDeveloper>Bench</SenderSoftwareDeveloper>
   <SenderSoftwareProduct>Bench EHR</SenderSoftwareProduct>
   <SenderSoftwareVersionRelease>1.0</SenderSoftwareVersionRelease></SenderSoftware>
  <PrescriberOrderNumber>BENCH-ORDER-{n}</PrescriberOrderNumber>
 </Header>
 <Body><NewRx>
  <Patient><HumanPatient>
   <Identification><MedicalRecordIdentificationNumberEHR>MRN{n:07d}</MedicalRecordIdentificationNumberEHR>
   </Identification>
   <Name><LastName>Benchmark</LastName><FirstName>Pat{n}</FirstName></Name>
   <Gender>{gender}</Gender><DateOfBirth><Date>19{yy:02d}-0{mm}-1{dd}</Date></DateOfBirth>
   <Address><AddressLine1>{n} Main St</AddressLine1><City>Springfield</City><StateProvince>IL</StateProvince>
    <PostalCode>62701</PostalCode><CountryCode>US</CountryCode></Address>
   <CommunicationNumbers><PrimaryTelephone><Number>2175550100</Number></PrimaryTelephone></CommunicationNumbers>
  </HumanPatient></Patient>
  <Pharmacy>
   <Identification><NCPDPID>{ncpdp}</NCPDPID><NPI>1234567893</NPI></Identification>
   <BusinessName>Main Street Pharmacy</BusinessName>
   <Address><AddressLine1>1 Market Sq</AddressLine1><City>Springfield</City><StateProvince>IL</StateProvince>
    <PostalCode>62701</PostalCode></Address>
  </Pharmacy>
  <Prescriber><NonVeterinarian>
   <Identification><DEANumber>AQ1234563</DEANumber><NPI>11223344{pp:02d}</NPI></Identification>
   <Name><LastName>Okafor</LastName><FirstName>Ada</FirstName><Suffix>MD</Suffix></Name>
   <Address><AddressLine1>3100 Broadway</AddressLine1><City>Springfield</City><StateProvince>IL</StateProvince>
    <PostalCode>62702</PostalCode></Address>
   <CommunicationNumbers><PrimaryTelephone><Number>2175550199</Number></PrimaryTelephone></CommunicationNumbers>
  </NonVeterinarian></Prescriber>
  <MedicationPrescribed>
   <DrugDescription>Lisinopril 10 MG Oral Tablet</DrugDescription>
   <DrugCoded><ProductCode><Code>6818005130{d}</Code><Qualifier>ND</Qualifier></ProductCode>
    <DrugDBCode><Code>314076</Code><Qualifier>SCD</Qualifier></DrugDBCode></DrugCoded>
   <Quantity><Value>{qty}</Value><CodeListQualifier>38</CodeListQualifier>
    <QuantityUnitOfMeasure><Code>C48542</Code></QuantityUnitOfMeasure></Quantity>
   <DaysSupply>{qty}</DaysSupply>
   <WrittenDate><Date>2026-11-2{dd}</Date></WrittenDate>
   <Substitutions>{subs}</Substitutions>
   <NumberOfRefills>{refills}</NumberOfRefills>
   <Sig><SigText>Take 1 tablet by mouth once daily.</SigText></Sig>
   <Note>Synthetic benchmark prescription.</Note>
  </MedicationPrescribed>
 </NewRx></Body>
</Message>
"""


def documents(n: int) -> list[bytes]:
    """``n`` distinct synthetic SCRIPT 2017071 NewRx documents (~3.5 KB each, 90 elements)."""
    return [
        TEMPLATE.format(n=i, ncpdp=1439900 + i % 50, gender="FM"[i % 2], yy=40 + i % 50, mm=1 + i % 9,
                        dd=i % 10, pp=i % 100, d=i % 10, qty=(30, 60, 90)[i % 3], subs=i % 2,
                        refills=i % 6).encode()
        for i in range(n)
    ]


def _ours(document: bytes) -> Any:
    return to_fhir(document)


def _validated(document: bytes) -> Any:
    return Bundle.model_validate(to_fhir(document))


def _element_to_dict(element: Any) -> Any:
    children = element.getchildren()
    if not children:
        return element.text
    result: dict[str, Any] = dict(element.attrib)
    for child in children:
        tag = child.tag.rpartition("}")[2]
        value = _element_to_dict(child)
        if tag in result:
            previous = result[tag]
            result[tag] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            result[tag] = value
    return result


_OBJECTIFY = objectify.makeparser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _generic(document: bytes) -> Any:
    return _element_to_dict(objectify.fromstring(document, _OBJECTIFY))


def _rate(function: Callable[[bytes], Any], docs: list[bytes], repeat: int) -> float:
    """Best of ``repeat`` runs, in documents per second of this process's CPU time (one core, so other
    processes on a shared machine do not count against us)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        started = time.process_time()
        for document in docs:
            function(document)
        best = min(best, time.process_time() - started)
    return len(docs) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="documents per run (default 3000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per contestant; the best counts")
    args = parser.parse_args()
    docs = documents(args.n)
    baseline_docs = docs[: max(1, args.n // 10)]
    for document in docs[:50]:
        _validated(document)
    ours = _rate(_ours, docs, args.repeat)
    validated = _rate(_validated, baseline_docs, args.repeat)
    generic = _rate(_generic, docs, args.repeat)
    size = sum(map(len, docs)) / len(docs)
    print(f"SCRIPT NewRx → FHIR Bundle: {ours:,.0f} documents/s single core "
          f"({args.n} documents, {size:,.0f} bytes each; goal >= {GOAL:,}: {'met' if ours >= GOAL else 'NOT met'})")
    print(f"  baseline validated (same mapping + fhir.resources R4B Bundle model): {validated:,.0f} documents/s"
          f" → ours is {ours / validated:.1f}x")
    print(f"  baseline generic parse only (lxml.objectify → dict, no mapping): {generic:,.0f} documents/s"
          f" → ours (parse + map) is {ours / generic:.2f}x")


if __name__ == "__main__":
    main()
