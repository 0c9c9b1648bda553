"""The staff page in a real browser: headless Chromium (Debian's chromium + chromium-driver) driven by Selenium
against a live ``interop serve`` on 127.0.0.1 with the demo pharmacy, three patients enrolled, and a call Task.

Screenshots go to test-output/ (counter screen and phone sizes). Skipped when Chromium is missing, except under
CI=true where that is a failure (.ci/run installs it).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from interop.demo import demo_bundle
from interop.fhir.systems import OUR_BASE
from interop.store import open_repository
from interop.sync import load_settings
from interop.sync.enrollment import enroll
from tests.api_support import ROOT, live_server

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
TODAY = date(2026, 11, 26)
OUTPUT = ROOT / "test-output"

pytestmark = pytest.mark.live


def _browser_missing() -> str | None:
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()) or shutil.which("chromium") is None:
        return "headless Chromium is not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {missing}")
        pytest.skip(missing)
    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'store.db'}"
    repo = open_repository(url)
    try:
        repo.process_bundle(demo_bundle(TODAY))
        patients = sorted(s.id for s in repo.iter_all("Patient"))
        for pid, days in zip(patients[:3], (0, 4, 9), strict=True):  # anchors spread over the calendar
            enroll(repo, pid, load_settings(), TODAY, anchor=TODAY + timedelta(days=days))
        repo.create({
            "resourceType": "Task", "status": "requested", "intent": "order", "priority": "urgent",
            "code": {"coding": [{"system": f"{OUR_BASE}/CodeSystem/outreach-task", "code": "reply-review"}]},
            "description": "Patient replied STOP DELIVERY: call to confirm the pickup",
            "for": {"reference": f"Patient/{patients[3]}"}, "authoredOn": TODAY.isoformat(),
        })
    finally:
        repo.close()
    with live_server(url) as live:
        yield live.base.removesuffix("/fhir"), patients


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1366,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver: object, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / name
    height = driver.execute_script("return document.documentElement.scrollHeight")  # type: ignore[attr-defined]
    width = driver.execute_script("return window.innerWidth")  # type: ignore[attr-defined]
    driver.set_window_size(max(width, 360), min(int(height) + 120, 4000))  # type: ignore[attr-defined]
    assert driver.save_screenshot(str(path)), f"no screenshot written to {path}"  # type: ignore[attr-defined]
    return path


def test_board_then_patient(site: tuple[str, list[str]], browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    root, _ = site
    driver = browser
    driver.set_window_size(1366, 1000)  # type: ignore[attr-defined]
    driver.get(f"{root}/app?today={TODAY}")  # type: ignore[attr-defined]
    wait = WebDriverWait(driver, 15)
    wait.until(ec.presence_of_element_located((By.ID, "patient-table")))
    body = driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
    for heading in ("Preparation queue", "Pickups, next 14 days", "Renewals and calls", "Demand forecast",
                    "Program, 2026 so far", "Patients and adherence"):
        assert heading in body
    assert "STOP DELIVERY" in body
    queue_rows = driver.find_elements(By.CSS_SELECTOR, "#queue tbody tr")  # type: ignore[attr-defined]
    assert queue_rows, "the enrolled patients' fills due today are not in the queue"
    pickup_days = driver.find_elements(By.CSS_SELECTOR, "#pickups li.has")  # type: ignore[attr-defined]
    assert len(pickup_days) == 3, "pickups today, on 11-30 and on 12-05 (the three anchors)"
    assert driver.find_elements(By.CSS_SELECTOR, "#pickups .pickup.accepted")  # type: ignore[attr-defined]
    assert driver.find_elements(By.CSS_SELECTOR, "#forecast svg rect.bar")  # type: ignore[attr-defined]
    enrolled_row = driver.find_element(By.CSS_SELECTOR, "#program tbody tr").text  # type: ignore[attr-defined]
    assert enrolled_row.split() == ["enrolled", "3"]
    header_bg = driver.execute_script(  # type: ignore[attr-defined]
        "return getComputedStyle(document.querySelector('header.top')).backgroundColor")
    assert header_bg not in ("rgba(0, 0, 0, 0)", "transparent"), "the stylesheet did not load"

    # the filter script hides the rows that do not match
    links = driver.find_elements(By.CSS_SELECTOR, "#patient-table a.patient-link")  # type: ignore[attr-defined]
    enrolled = [a for a in links if "not enrolled" not in a.find_element(By.XPATH, "../..").text]
    assert len(links) == 5 and len(enrolled) == 3
    name = enrolled[0].text
    enrolled_id = enrolled[0].get_attribute("href").split("/app/patient/")[1].split("?")[0]
    box = driver.find_element(By.ID, "filter")  # type: ignore[attr-defined]
    box.send_keys(name.split()[-1])
    visible = [a for a in links if a.is_displayed()]
    assert [a.text for a in visible] == [name]
    box.clear()
    box.send_keys(" ")
    box.clear()
    _shot(driver, "web-board.png")

    driver.find_element(By.LINK_TEXT, name).click()  # type: ignore[attr-defined]
    wait.until(ec.presence_of_element_located((By.ID, "patient-name")))
    assert driver.find_element(By.ID, "patient-name").text == name  # type: ignore[attr-defined]
    page = driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
    assert "why this anchor date" in page.lower() and "Anchor 2026-" in page
    narrative = driver.find_element(By.CSS_SELECTOR, "#plan .narrative").text  # type: ignore[attr-defined]
    assert narrative.startswith("Anchor ")
    assert driver.find_elements(By.CSS_SELECTOR, "#plan tbody tr")  # type: ignore[attr-defined]
    assert driver.find_elements(By.CSS_SELECTOR, "#adherence svg rect.covered")  # type: ignore[attr-defined]
    assert "%" in driver.find_element(By.ID, "adherence").text  # type: ignore[attr-defined]
    _shot(driver, "web-patient.png")

    driver.set_window_size(390, 844)  # type: ignore[attr-defined]
    driver.get(f"{root}/app?today={TODAY}")  # type: ignore[attr-defined]
    wait.until(ec.presence_of_element_located((By.ID, "patient-table")))
    overflow = driver.execute_script(  # type: ignore[attr-defined]
        "return document.documentElement.scrollWidth > window.innerWidth + 1")
    assert not overflow, "the page scrolls sideways on a phone"
    _shot(driver, "web-board-phone.png")
    driver.set_window_size(390, 844)  # type: ignore[attr-defined]
    driver.get(f"{root}/app/patient/{enrolled_id}?today={TODAY}")  # type: ignore[attr-defined]
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#adherence svg")))
    _shot(driver, "web-patient-phone.png")


def test_unknown_patient_is_404(site: tuple[str, list[str]]) -> None:
    import httpx

    root, _ = site
    assert httpx.get(f"{root}/app/patient/nobody").status_code == 404
    assert httpx.get(f"{root}/app?today=not-a-date").status_code == 400


SECRET = "staff-page-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def secure_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same server with authorization on (HS256 secret): the page needs a token like the API."""
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {missing}")
        pytest.skip(missing)
    url = f"sqlite:///{tmp_path_factory.mktemp('web-auth') / 'store.db'}"
    repo = open_repository(url)
    try:
        repo.process_bundle(demo_bundle(TODAY))
    finally:
        repo.close()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("INTEROP_AUTH_ENABLED", "true")
        env.setenv("INTEROP_AUTH_SECRET", SECRET)
        with live_server(url) as live:
            env.undo()
            yield live.base.removesuffix("/fhir")


def _token(scope: str, patient: str | None = None) -> str:
    from interop.api.tokens import mint
    from interop.config import Settings

    return mint(Settings(auth_secret=SECRET), scope, 600, subject="pharmacist", patient=patient)


def test_page_needs_a_token_with_read_grants(secure_site: str) -> None:
    import httpx

    refused = httpx.get(f"{secure_site}/app")
    assert refused.status_code == 401 and "Sign in" in refused.text and "Preparation queue" not in refused.text
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert httpx.get(f"{secure_site}/app/patient/x", headers={"Authorization": "Bearer forged"}).status_code == 401
    narrow = httpx.get(f"{secure_site}/app", headers={"Authorization": f"Bearer {_token('patient/*.rs', 'p1')}"})
    assert narrow.status_code == 403 and "does not grant user or system read" in narrow.text
    ok = httpx.get(f"{secure_site}/app?today={TODAY}", headers={"Authorization": f"Bearer {_token('user/*.rs')}"})
    assert ok.status_code == 200 and "Preparation queue" in ok.text
    assert httpx.get(f"{secure_site}/app/static/app.css").status_code == 200


def test_browser_sign_in_and_out(secure_site: str, browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.set_window_size(1366, 1000)  # type: ignore[attr-defined]
    driver.get(f"{secure_site}/app?today={TODAY}")  # type: ignore[attr-defined]
    wait = WebDriverWait(driver, 15)
    wait.until(ec.presence_of_element_located((By.ID, "token")))
    assert "no bearer token" in driver.find_element(By.ID, "refused").text  # type: ignore[attr-defined]
    _shot(driver, "web-login.png")
    driver.set_window_size(1366, 1000)  # type: ignore[attr-defined]
    driver.find_element(By.ID, "token").send_keys(_token("user/*.rs"))  # type: ignore[attr-defined]
    driver.find_element(By.CSS_SELECTOR, "form button").click()  # type: ignore[attr-defined]
    wait.until(ec.presence_of_element_located((By.ID, "patient-table")))
    assert "Preparation queue" in driver.find_element(By.TAG_NAME, "body").text  # type: ignore[attr-defined]
    assert "interop_token" not in driver.execute_script("return document.cookie")  # type: ignore[attr-defined]
    driver.find_element(By.CSS_SELECTOR, "form.logout button").click()  # type: ignore[attr-defined]
    wait.until(ec.presence_of_element_located((By.ID, "token")))
