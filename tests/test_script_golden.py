"""SCRIPT → FHIR output pinned byte for byte: SHA-256 of ``orjson.dumps(bundle)`` per fixture and corpus file.

Guards the speed work on adapters/script (bench/bench_script.py): any change in any output fails here. The
digests were computed with the adapter as it stood before that work. When an output change is intended,
regenerate them with: .venv/bin/python -m tests.test_script_golden  (prints both tables to paste below).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from tests import script_messages as sm
from tests.conftest import CORPUS, corpus_files

CORPUS_FILES = corpus_files("ncpdp-script", "**/*.xml")


def fixture_documents() -> dict[str, bytes]:
    """The NewRx, RxFill, CancelRx and renewal/change fixtures of tests/script_messages.py, by name."""
    documents: dict[str, bytes] = {}
    for version in ("2017071", "2023011"):
        for namespace in (True, False):
            for substitutions in ("0", "1"):
                documents[f"new_rx-{version}-ns{int(namespace)}-sub{substitutions}"] = sm.new_rx(
                    version=version, namespace=namespace, substitutions=substitutions)
    documents["new_rx-liquid"] = sm.new_rx(medication=sm.LIQUID)
    documents["new_rx-no-order"] = sm.new_rx(order="")
    for status in ("Dispensed", "PartiallyDispensed", "NotDispensed", "Transferred"):
        for fill in (0, 2):
            documents[f"rx_fill-{status}-{fill}"] = sm.rx_fill(status, fill=fill)
    documents["rx_fill-short-substituted"] = sm.rx_fill("Dispensed", quantity="12.5", days=12, ndc="00093-7180-56")
    documents["rx_fill-2023011"] = sm.rx_fill("Dispensed", version="2023011")
    documents["cancel_rx"] = sm.cancel_rx()
    for transaction in ("CancelRxResponse", "RxRenewalResponse", "RxChangeResponse"):
        for outcome in ("Approved", "ApprovedWithChanges", "Replace", "Validated", "Denied"):
            for nested in (False, True):
                documents[f"{transaction}-{outcome}-nested{int(nested)}"] = sm.response(
                    transaction, outcome, nested=nested)
        documents[f"{transaction}-Approved-no-drug"] = sm.response(transaction, "Approved", with_drug=False)
    documents["change_request"] = sm.change_request()
    return documents


def corpus_documents() -> dict[str, bytes]:
    """Every SCRIPT corpus file, by its path under ncpdp-script."""
    folder = CORPUS / "ncpdp-script"
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in CORPUS_FILES}


def digest(data: bytes) -> str:
    from adapters.script import to_fhir

    return hashlib.sha256(orjson.dumps(to_fhir(data))).hexdigest()


FIXTURES = {
    "new_rx-2017071-ns1-sub0": "3f6f7a7571e202f8118626bad2f3b6f7bf212406ae2cb1b457222fdce10c85bb",
    "new_rx-2017071-ns1-sub1": "8fc3d7734218506a6d5fc3efc8ef475f81bfcc442483ecf2eb2b6c54d9afb170",
    "new_rx-2017071-ns0-sub0": "3f6f7a7571e202f8118626bad2f3b6f7bf212406ae2cb1b457222fdce10c85bb",
    "new_rx-2017071-ns0-sub1": "8fc3d7734218506a6d5fc3efc8ef475f81bfcc442483ecf2eb2b6c54d9afb170",
    "new_rx-2023011-ns1-sub0": "3f6f7a7571e202f8118626bad2f3b6f7bf212406ae2cb1b457222fdce10c85bb",
    "new_rx-2023011-ns1-sub1": "8fc3d7734218506a6d5fc3efc8ef475f81bfcc442483ecf2eb2b6c54d9afb170",
    "new_rx-2023011-ns0-sub0": "3f6f7a7571e202f8118626bad2f3b6f7bf212406ae2cb1b457222fdce10c85bb",
    "new_rx-2023011-ns0-sub1": "8fc3d7734218506a6d5fc3efc8ef475f81bfcc442483ecf2eb2b6c54d9afb170",
    "new_rx-liquid": "acd9e814153c83367321244b281c786a98121b2e0b4cf1179c8193e2cab84038",
    "new_rx-no-order": "cd8fe277eac4b9d4d8f17b0eb14fd66a35b064d0f84ab168437922348ee19e7d",
    "rx_fill-Dispensed-0": "647d85836f7bcfbeaafa8484b8a55075674f35341fcb2eeeb1d446308d2094bb",
    "rx_fill-Dispensed-2": "fe6be481973f6039860c07075aed16c4e20dbe3fcffe46f122cff989b2520a26",
    "rx_fill-PartiallyDispensed-0": "b1882a53457ec3229668382e418774641b767c545a5b00d235d24d197717dc39",
    "rx_fill-PartiallyDispensed-2": "083574dd1c4493f84bd900f66e52ca93ed6e866aab1e1eba7a5f3d366f960900",
    "rx_fill-NotDispensed-0": "bf0fe01432b0e5022bcc64cfbb8d1ac5abd4d6126e866e868105dd77a5641c64",
    "rx_fill-NotDispensed-2": "b2277032f59b481c4ae1d2b0b912169417411fb8c99d439a1a19315666caf21e",
    "rx_fill-Transferred-0": "0cf2de4d15ec7e0ee53bb666bf1424b025a7a6f5f53546cb186211dfa916ae00",
    "rx_fill-Transferred-2": "caf194a3b53fe805f46f125d56bea132de6af95971e0c66095d6bdf7b5dd40f9",
    "rx_fill-short-substituted": "c28a6d4f5e6624ae5d706db267da3143c8e72bb75f1cd8f87d2c5e609ff58cbb",
    "rx_fill-2023011": "fe6be481973f6039860c07075aed16c4e20dbe3fcffe46f122cff989b2520a26",
    "cancel_rx": "fc1c60834728557a738095bca62bf39b9eb1ce053d9718d6d092a2b246bc4c2c",
    "CancelRxResponse-Approved-nested0": "8293d9dccd61a7cc694062ce8b0ce95d6e92eabfc906e14a0c4b380f35d83691",
    "CancelRxResponse-Approved-nested1": "7ce22adb7e40183c4689b25e2f552fa6263ab37e4158d89d2fd2fb76977eb3da",
    "CancelRxResponse-ApprovedWithChanges-nested0": "f8709d6af3bc653ab958a1fb96d490aae28c9c4d44b96a984dea80aa2d2819de",
    "CancelRxResponse-ApprovedWithChanges-nested1": "54dc0b838ca0d358e16715295795bb76bd8192dbffab75d4ecd0f8b024f9f99a",
    "CancelRxResponse-Replace-nested0": "3912e8aabccf017c17f14425f06b1194130dcc9191847adcf71e2707b38e6fa5",
    "CancelRxResponse-Replace-nested1": "7a208d29daf73f6c22295cc64aedea2edddc7ce86d40f60f157f999e9f7025a5",
    "CancelRxResponse-Validated-nested0": "a202b0d743866c09b9a891efb5186cb1a4c87f246c45552b73b07add3bf7acf4",
    "CancelRxResponse-Validated-nested1": "978abad26b5cf6c4b81a3c8f963f2f38274536a9afd379e046d698df19770f66",
    "CancelRxResponse-Denied-nested0": "c4f6b77252c88724294fe8c7273013da51ff910a082eb0794f04864ae64ac8c0",
    "CancelRxResponse-Denied-nested1": "c4f6b77252c88724294fe8c7273013da51ff910a082eb0794f04864ae64ac8c0",
    "CancelRxResponse-Approved-no-drug": "8293d9dccd61a7cc694062ce8b0ce95d6e92eabfc906e14a0c4b380f35d83691",
    "RxRenewalResponse-Approved-nested0": "107aea1e7981150791871fe27d2233d2c0a040e3ee64b180d8c49b8ea7e52b6b",
    "RxRenewalResponse-Approved-nested1": "32b41d5fa2cbc31f9ca658946bd4636ad0f6a9a6299b4c272ec22fc62722efbf",
    "RxRenewalResponse-ApprovedWithChanges-nested0": "4400d35f3af01af2915af05a28d2b4aaed62dd3dc646c3d39ab34cc29e97dd12",
    "RxRenewalResponse-ApprovedWithChanges-nested1": "ef444d20c7c98998a2c569b0037e577396711f707248627c534ab494dcd26e99",
    "RxRenewalResponse-Replace-nested0": "10ace713fd34ec23401bbd9eb9952a7c237f50048ceee8560c0cb747880eb2a1",
    "RxRenewalResponse-Replace-nested1": "9dc022dce28ca7cf5dd8fe54eda1400c74b4d54615031b72ac3758ae9771018f",
    "RxRenewalResponse-Validated-nested0": "d15b060081602f0408cdaf713cfad0e701f4d3aecb7c0e78170d2103d56968bf",
    "RxRenewalResponse-Validated-nested1": "7a1c668d2df8220db869fbc3accd471f270a4a3dc3eb33baef0d8029c328cd36",
    "RxRenewalResponse-Denied-nested0": "81a16082728bd4bac5dfcfda49bbdb3c4bf76888fd547a65741f1000c56c9306",
    "RxRenewalResponse-Denied-nested1": "81a16082728bd4bac5dfcfda49bbdb3c4bf76888fd547a65741f1000c56c9306",
    "RxRenewalResponse-Approved-no-drug": "402d1ec8a4ebc1bf9d4d2a709d2a9e5f344c7b5638af46eac246e181df9dbe18",
    "RxChangeResponse-Approved-nested0": "ae2048faf2e273bbde6d38f13d9caa068bcd4f640734d7f4a000ceff0c993e11",
    "RxChangeResponse-Approved-nested1": "2377a504239ee3db520af852cadc9f1ffc217b9fa6eac087c3b89ea7750bec68",
    "RxChangeResponse-ApprovedWithChanges-nested0": "f74825ed3721c0269070f694f803e47e6f556125db30fab0f3ef7fb61c6e3339",
    "RxChangeResponse-ApprovedWithChanges-nested1": "3893e5852252979d82c6fea5a091a8cf757ad5d320db0b01fcef32f9a695faf2",
    "RxChangeResponse-Replace-nested0": "0fa35e4f1a3cd24dafa81c91d7f4645e3d78ac99d5f57ac302871ec1bdea1305",
    "RxChangeResponse-Replace-nested1": "6b985bb1bf5710ca9b62cf63be15a3400ee955a8b8a86e478d15a4dcae531f89",
    "RxChangeResponse-Validated-nested0": "c0a747f93b0807bc255515fd95ce6020fcd660bb373dfffa2ae9eec5ca6101c5",
    "RxChangeResponse-Validated-nested1": "8c804090ace8499f763e951a41d3349dbc62dcff08e733d30287845fa7f1fc05",
    "RxChangeResponse-Denied-nested0": "7c86a87c4556f8c1a60c81bb04a308096890ae18cb823c8e1fac31958359fb31",
    "RxChangeResponse-Denied-nested1": "7c86a87c4556f8c1a60c81bb04a308096890ae18cb823c8e1fac31958359fb31",
    "RxChangeResponse-Approved-no-drug": "b76dc1c2c19e1d0d0e394cd2e74390b119f2a5913a27985ef208cd7355aa4cf8",
    "change_request": "c5c7ca75a6e11285cd9b2c7d46fef78a97f3f9e93e77c782d1aedb24aa366193",
}

CORPUS_DIGESTS = {
    "cosyte-ncpdp/cancelrx-response-approved.xml": "2a6dff7df9885d4c04b480c8ab27b21041e2dc99ce8f79a7bf4aedbb17bb6c74",
    "cosyte-ncpdp/cancelrx-response-denied.xml": "08100e039c437b53c088d2b26238a1588fb1af13e1cc70875dd3894fcd00f30c",
    "cosyte-ncpdp/error-response.xml": "6df77237f3c4101e26902bb4260fdfeb170b1f2745a50ce8b666522463ca8ddb",
    "cosyte-ncpdp/newrx-basic.xml": "8c06975db519e2823789e210db3b962a8d5950c27fb2ec7e2cb83ca04841963e",
    "cosyte-ncpdp/newrx-coded-and-strength.xml": "9c67adb10016b53627766787bf0024b039871dc40628d7e4213b40242597757d",
    "cosyte-ncpdp/newrx-edge-empties.xml": "0d338313a10756a0383a36fcb1d9e76971bfa926e5d7120baccbcd15934b3d2b",
    "cosyte-ncpdp/newrx-no-version.xml": "6f9373974ed7792d40b2f1231f3a7c5a20197dc91631251f98d71ec2226ba702",
    "cosyte-ncpdp/newrx-sig-ambiguous-dose.xml": "a4ddb3afa74b2d00190f2521956ca753360a8b57478e19bf53b1ac7818987042",
    "cosyte-ncpdp/newrx-sig-disagreement.xml": "2304dff0466c21ca4f74ecdeca50fccf21b11ba5bcf6aa55dea29e341441e160",
    "cosyte-ncpdp/newrx-sig-text-only.xml": "d13e5f3404c5582144dd28ad2b531f89e56672e9d27b425c07036eb61e57c30e",
    "cosyte-ncpdp/newrx-structured-sig.xml": "c807fb8a3b60ec8de0439ca3c83e83e101d8d9267acbf3a7e8519fe099c5fa5b",
    "cosyte-ncpdp/newrx-variant-shapes.xml": "822686b90139e53b324289b721c3b6a6d110bc710a35fb3ef8d66b8df0acf440",
    "cosyte-ncpdp/rxchange-request.xml": "f7687cb1712219f7754ea68de19548fb41041ea7e88f8b4bb0a1ddd6f1804b81",
    "cosyte-ncpdp/rxchange-response-denied.xml": "3db11db4a4434cc7b6f52c498dbb2da34a9c447fcfec2e5a60b5958a3ed42054",
    "cosyte-ncpdp/rxchange-response-validated.xml": "efb0a0c1adf03ac62f1955d4a2c30cd8cd5ddeb89d6f777646b8bc4e7084cfeb",
    "cosyte-ncpdp/rxrenewal-request.xml": "a0515eea98896c288474b076cd7b3459a6a0610ada3d05f301175792b2fd1180",
    "cosyte-ncpdp/rxrenewal-response-approved-with-changes-nested.xml": "c0c83fc7a79c70314623e4f04a93163db3b9a7061a53bc2436a9e50f3d64dbd5",
    "cosyte-ncpdp/rxrenewal-response-approved-with-changes.xml": "248ec30ba902fc3e68d5d8c980a44688e0999f848b7cfc7c1ed1b00cfcf1b364",
    "cosyte-ncpdp/rxrenewal-response-approved.xml": "85cfc100561709d17302f0c3c31d0b8046d4535ae588b283b76a842673d99e14",
    "cosyte-ncpdp/rxrenewal-response-denied.xml": "c15895a1ccbb35b0d554b5f7324f85482981cdcdab317559893ad837da4cfb52",
    "cosyte-ncpdp/status-no-code.xml": "efcc38e6d33e78fe2e0642f1d2894a95f610788aa7bea63123fafab98da4a2ea",
    "cosyte-ncpdp/status-response.xml": "dca636294dd6e59206c3662e8881e59b2eaa09891ac342d099a7176863d76aa8",
    "cosyte-ncpdp/surescripts-routing.xml": "b3cf4f3a455ce01f4a26c34344ec9e643611966b5320a2aadbd310f60a0aa3b3",
    "cosyte-ncpdp/surescripts-version-2023011.xml": "b21657030aa4b33b1a7d131f7108f808a6951358d137723b57185b663f52de55",
    "cosyte-ncpdp/verify-response.xml": "5334ad19ac3e56bf676a0479c12127cd453a6561f32ea7b17185db7f06908c1e",
    "dgoradia-ncpdp/sample-newrx-qty-float.xml": "20ead57c3d8ee3def58d29ec6dd528d4f1c5b7d20174dc928763fc4ccabc17cb",
    "dgoradia-ncpdp/sample-newrx.xml": "5b2d365ee7bb1840f066a6cd0cf793d6423dd2deb527cb420c467c252f4a03c9",
}


def test_every_fixture_is_pinned() -> None:
    assert set(fixture_documents()) == set(FIXTURES)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_output_is_unchanged(name: str) -> None:
    assert digest(fixture_documents()[name]) == FIXTURES[name]


@pytest.mark.corpus
def test_every_converting_corpus_file_is_pinned(corpus: Path) -> None:
    assert CORPUS_FILES, f"no SCRIPT files under {corpus / 'ncpdp-script'}"
    assert set(CORPUS_DIGESTS) <= set(corpus_documents())
    assert len(CORPUS_DIGESTS) >= 25


@pytest.mark.corpus
@pytest.mark.parametrize("name", sorted(CORPUS_DIGESTS))
def test_corpus_output_is_unchanged(name: str, corpus: Path) -> None:
    data = (corpus / "ncpdp-script" / name).read_bytes()
    assert digest(data) == CORPUS_DIGESTS[name]


def _print_tables() -> None:
    """Print FIXTURES and CORPUS_DIGESTS as computed by the current code (files that fail to convert skipped)."""
    from adapters.script.errors import ScriptError

    print("FIXTURES = {")
    for name, data in fixture_documents().items():
        print(f'    "{name}": "{digest(data)}",')
    print("}\n\nCORPUS_DIGESTS = {")
    for name, data in corpus_documents().items():
        try:
            print(f'    "{name}": "{digest(data)}",')
        except ScriptError:
            continue
    print("}")


if __name__ == "__main__":
    _print_tables()
