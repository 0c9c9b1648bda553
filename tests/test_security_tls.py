"""``interop serve`` with certificates configured: HTTPS for the API and TLS for its MLLP listener."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from interop.ingest.mllp import ack_code, send
from tests.api_support import ROOT, Live, free_port, live_server
from tests.ingest_messages import dispense
from tests.security_support import ALL, SECRET, bearer
from tests.tls_support import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def serving(pki: Pki, tmp_path: Path) -> AbstractContextManager[Live]:
    """``interop serve`` in a subprocess with the test CA's server certificate for HTTPS and MLLP."""
    env = {
        "INTEROP_AUTH_ENABLED": "true",
        "INTEROP_AUTH_SECRET": SECRET,
        "INTEROP_AUDIT_ENABLED": "true",
        "INTEROP_TLS_CERT": str(pki.server_cert),
        "INTEROP_TLS_KEY": str(pki.server_key),
        "INTEROP_MLLP_TLS_CERT": str(pki.server_cert),
        "INTEROP_MLLP_TLS_KEY": str(pki.server_key),
        "INTEROP_MLLP_TLS_CA": str(pki.ca),
    }
    return live_server(f"sqlite:///{tmp_path / 'tls.db'}", env=env, mllp_port=free_port(), tls=pki.client_context())


def test_https_api_and_tls_mllp_under_serve(pki: Pki, tmp_path: Path) -> None:
    with serving(pki, tmp_path) as served:
        _exercise(served, pki)
    assert f"FHIR base URL: {served.base}" in served.output
    assert "http://" not in served.output
    assert "(TLS)" in served.output


def _exercise(served: Live, pki: Pki) -> None:
    with httpx.Client(verify=pki.client_context(), timeout=10) as client:
        assert client.get(f"{served.base}/Patient").status_code == 401
        answer = client.get(f"{served.base}/Patient", headers=bearer(ALL))
        assert answer.status_code == 200 and answer.json()["resourceType"] == "Bundle"
    with pytest.raises(httpx.TransportError):
        httpx.get(served.base.replace("https://", "http://") + "/metadata", timeout=5)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{served.base}/metadata", timeout=5)  # the system trust store does not know the test CA
    acks = send("127.0.0.1", served.mllp_port, [dispense(1)], window=1, timeout=10,
                tls=pki.client_context(with_certificate=True))
    assert [ack_code(a) for a in acks] == ["AA"]
    try:
        refused = send("127.0.0.1", served.mllp_port, [dispense(2)], window=1, timeout=10, tls=pki.client_context())
    except OSError:
        refused = []
    assert refused == []
    with httpx.Client(verify=pki.client_context(), timeout=10) as client:
        found = client.get(f"{served.base}/MedicationDispense", headers=bearer(ALL)).json()
        assert [e["resource"]["resourceType"] for e in found.get("entry", [])] == ["MedicationDispense"]


@pytest.mark.parametrize(
    "env,expected",
    [
        ({"INTEROP_TLS_CERT": "{cert}"}, "INTEROP_TLS_CERT and INTEROP_TLS_KEY"),
        ({"INTEROP_MLLP_TLS_KEY": "{key}"}, "INTEROP_MLLP_TLS_CERT and INTEROP_MLLP_TLS_KEY"),
        ({"INTEROP_TLS_CERT": "{cert}.missing", "INTEROP_TLS_KEY": "{key}"}, "TLS or MLLP configuration"),
        ({"INTEROP_MLLP_ALLOWED": "10.0.0.300/8"}, "INTEROP_MLLP_ALLOWED"),
    ],
)
def test_a_bad_tls_or_allow_list_configuration_stops_serve_with_its_name(
    pki: Pki, tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    given = {k: v.format(cert=pki.server_cert, key=pki.server_key) for k, v in env.items()}
    done = subprocess.run(
        [sys.executable, "-m", "interop", "serve", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--mllp-port", "0",
         "--port", str(free_port()), "--insecure-dev"],
        cwd=ROOT, env={**os.environ, **given}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0 and expected in done.stderr
    assert "Traceback" not in done.stderr
