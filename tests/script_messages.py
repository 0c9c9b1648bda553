"""Hand-written SCRIPT 2017071 / 2023011 messages for the SCRIPT adapter tests (synthetic, no real PHI).

Shapes follow the 2017071 schema as described in research/ncpdp.md §2.2 (child-element ProductCode,
Sig/SigText, DateOfBirth/Date); ``wrap`` writes the Message envelope for either version, with or without the
NCPDP namespace.
"""

from __future__ import annotations

NS = "http://www.ncpdp.org/schema/SCRIPT"

PATIENT = """
<Patient><HumanPatient>
  <Identification><MedicalRecordIdentificationNumberEHR>MRN-4471</MedicalRecordIdentificationNumberEHR>
  </Identification>
  <Name><LastName>Quill</LastName><FirstName>Harper</FirstName><MiddleName>J</MiddleName></Name>
  <Gender>F</Gender><DateOfBirth><Date>1951-06-30</Date></DateOfBirth>
  <Address><AddressLine1>12 Elm St</AddressLine1><City>Springfield</City><StateProvince>IL</StateProvince>
    <PostalCode>62701</PostalCode><CountryCode>US</CountryCode></Address>
  <CommunicationNumbers><PrimaryTelephone><Number>2175550100</Number></PrimaryTelephone></CommunicationNumbers>
</HumanPatient></Patient>"""

PHARMACY = """
<Pharmacy>
  <Identification><NCPDPID>1439900</NCPDPID><NPI>1234567893</NPI></Identification>
  <BusinessName>Main Street Pharmacy</BusinessName>
</Pharmacy>"""

PRESCRIBER = """
<Prescriber><NonVeterinarian>
  <Identification><DEANumber>AQ1234563</DEANumber><NPI>1122334455</NPI></Identification>
  <Name><LastName>Okafor</LastName><FirstName>Ada</FirstName><Suffix>MD</Suffix></Name>
</NonVeterinarian></Prescriber>"""

PRESCRIBED = """
<MedicationPrescribed>
  <DrugDescription>Lisinopril 10 MG Oral Tablet</DrugDescription>
  <DrugCoded>
    <ProductCode><Code>68180-0513-01</Code><Qualifier>ND</Qualifier></ProductCode>
    <DrugDBCode><Code>314076</Code><Qualifier>SCD</Qualifier></DrugDBCode>
  </DrugCoded>
  <Quantity><Value>90</Value><CodeListQualifier>38</CodeListQualifier>
    <QuantityUnitOfMeasure><Code>C48542</Code></QuantityUnitOfMeasure></Quantity>
  <DaysSupply>90</DaysSupply>
  <WrittenDate><Date>2026-10-01</Date></WrittenDate>
  <Substitutions>{substitutions}</Substitutions>
  <NumberOfRefills>3</NumberOfRefills>
  <Diagnosis><Primary><Code>I10</Code><Qualifier>ABF</Qualifier><Description>Essential hypertension</Description>
  </Primary></Diagnosis>
  <Note>Check potassium in 3 months.</Note>
  <Sig>
    <SigText>Take 1 tablet by mouth once daily.</SigText>
    <Instruction>
      <DoseAdministration>
        <DoseDeliveryMethod><Text>Take</Text><Code>419652001</Code><Qualifier>SNOMED</Qualifier></DoseDeliveryMethod>
        <Dose><DoseQuantity>1</DoseQuantity>
          <DoseUnitOfMeasure><Text>tablet</Text><Code>C48542</Code><Qualifier>NCI</Qualifier></DoseUnitOfMeasure>
        </Dose>
      </DoseAdministration>
      <RouteOfAdministration><Text>by mouth</Text><Code>26643006</Code><Qualifier>SNOMED</Qualifier>
      </RouteOfAdministration>
      <AdministrationTiming><Text>once daily</Text></AdministrationTiming>
    </Instruction>
  </Sig>
  <OtherMedicationDate><OtherMedicationDate><Date>2026-10-01</Date></OtherMedicationDate>
    <OtherMedicationDateQualifier>EffectiveDate</OtherMedicationDateQualifier></OtherMedicationDate>
</MedicationPrescribed>"""

LIQUID = """
<MedicationPrescribed>
  <DrugDescription>Amoxicillin 400 MG/5ML Oral Suspension</DrugDescription>
  <DrugCoded><ProductCode><Code>65862007001</Code><Qualifier>ND</Qualifier></ProductCode></DrugCoded>
  <Quantity><Value>150.5</Value><CodeListQualifier>38</CodeListQualifier>
    <QuantityUnitOfMeasure><Code>C28254</Code></QuantityUnitOfMeasure></Quantity>
  <DaysSupply>10</DaysSupply>
  <WrittenDate><DateTime>2026-10-02T09:15:00Z</DateTime></WrittenDate>
  <Substitutions>1</Substitutions>
  <NumberOfRefills>0</NumberOfRefills>
  <Sig><SigText>Take 7.5 mL by mouth twice daily.</SigText></Sig>
</MedicationPrescribed>"""

DISPENSED = """
<MedicationDispensed>
  <DrugDescription>Lisinopril 10 MG Oral Tablet</DrugDescription>
  <DrugCoded><ProductCode><Code>{ndc}</Code><Qualifier>ND</Qualifier></ProductCode></DrugCoded>
  <Quantity><Value>{quantity}</Value><CodeListQualifier>38</CodeListQualifier>
    <QuantityUnitOfMeasure><Code>C48542</Code></QuantityUnitOfMeasure></Quantity>
  <DaysSupply>{days}</DaysSupply>
  <LastFillDate><Date>2026-10-03</Date></LastFillDate>
  <Sig><SigText>Take 1 tablet by mouth once daily.</SigText></Sig>
  <HistorySource><FillNumber>{fill}</FillNumber></HistorySource>
</MedicationDispensed>"""


def wrap(transaction: str, inner: str, header: str, *, version: str = "2017071", namespace: bool = True) -> bytes:
    """A Message around one Body transaction; 2017071 uses the *Version attributes, 2023011 @version."""
    xmlns = f' xmlns="{NS}"' if namespace else ""
    if version == "2017071":
        attrs = ('DatatypesVersion="20170715" TransportVersion="20170715" TransactionDomain="SCRIPT" '
                 'TransactionVersion="20170715" StructuresVersion="20170715" ECLVersion="20170715"')
    else:
        attrs = f'version="{version}"'
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Message{xmlns} {attrs}><Header>{header}</Header>'
            f"<Body><{transaction}>{inner}</{transaction}></Body></Message>").encode()


def header(message_id: str, *, order: str = "ORD-1001", relates_to: str = "", rx_number: str = "") -> str:
    parts = ['<To Qualifier="P">1439900</To><From Qualifier="D">6128890368017</From>',
             f"<MessageID>{message_id}</MessageID>"]
    if relates_to:
        parts.append(f"<RelatesToMessageID>{relates_to}</RelatesToMessageID>")
    parts.append("<SentTime>2026-10-01T14:30:00Z</SentTime>")
    if rx_number:
        parts.append(f"<RxReferenceNumber>{rx_number}</RxReferenceNumber>")
    if order:
        parts.append(f"<PrescriberOrderNumber>{order}</PrescriberOrderNumber>")
    return "".join(parts)


def new_rx(*, version: str = "2017071", namespace: bool = True, substitutions: str = "0",
           medication: str = "", order: str = "ORD-1001", message_id: str = "MSG-NEWRX-1") -> bytes:
    drug = medication or PRESCRIBED.format(substitutions=substitutions)
    return wrap("NewRx", PATIENT + PHARMACY + PRESCRIBER + drug, header(message_id, order=order),
                version=version, namespace=namespace)


def rx_fill(status: str, *, fill: int = 2, quantity: str = "30", days: int = 30, ndc: str = "68180051301",
            version: str = "2017071") -> bytes:
    inner = {
        "Dispensed": "<Dispensed><Note>Picked up by patient.</Note></Dispensed>",
        "PartiallyDispensed": "<PartiallyDispensed><Note>Short on stock; rest tomorrow.</Note></PartiallyDispensed>",
        "NotDispensed": "<NotDispensed><ReasonCode>AA</ReasonCode><Note>Patient declined.</Note></NotDispensed>",
        "Transferred": "<Transferred><Note>Moved to store 22.</Note></Transferred>",
    }[status]
    body = (f"<FillStatus>{inner}</FillStatus>" + PATIENT + PHARMACY + PRESCRIBER
            + PRESCRIBED.format(substitutions="0")
            + DISPENSED.format(ndc=ndc, quantity=quantity, days=days, fill=fill))
    return wrap("RxFill", body, header("MSG-FILL-1", relates_to="MSG-NEWRX-1", rx_number="RX-778812"),
                version=version)


def cancel_rx() -> bytes:
    return wrap("CancelRx", PATIENT + PRESCRIBER + PRESCRIBED.format(substitutions="0"),
                header("MSG-CANCEL-1", order="ORD-1001"))


def response(transaction: str, outcome: str, *, with_drug: bool = True, nested: bool = False,
             order: str = "ORD-2002") -> bytes:
    """A CancelRxResponse / RxRenewalResponse / RxChangeResponse answering MSG-REQ-1."""
    drug = PRESCRIBED.format(substitutions="0") if with_drug else ""
    if outcome == "Denied":
        choice = "<Denied><ReasonCode>AT</ReasonCode><DenialReason>Patient not seen in a year.</DenialReason></Denied>"
    elif nested:
        choice = f"<{outcome}><Note>Dose changed.</Note>{drug}</{outcome}>"
        drug = ""
    else:
        choice = f"<{outcome}><Note>As requested.</Note></{outcome}>"
    parties = PATIENT + PHARMACY + PRESCRIBER if with_drug else ""
    inner = f"<Response>{choice}</Response>{parties}{drug}"
    return wrap(transaction, inner, header("MSG-RESP-1", order=order, relates_to="MSG-REQ-1"))


def change_request() -> bytes:
    inner = ("<MessageRequestCode>G</MessageRequestCode>" + PATIENT + PHARMACY + PRESCRIBER
             + PRESCRIBED.format(substitutions="0"))
    return wrap("RxChangeRequest", inner, header("MSG-REQ-1", order="ORD-1001"))
