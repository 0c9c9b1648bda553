"""The staff page at ``/app``: server-rendered HTML (Jinja2 templates in interop/web/templates), one small
script, charts as inline SVG. ``staff_router(repo, settings)`` is included by ``interop.api.app``.

With authorization on (``INTEROP_AUTH_ENABLED``, the default) every page needs the same bearer tokens as the
FHIR API, granting user or system read of every type the page shows: in the ``Authorization`` header, or
pasted once into the login form, which keeps it in an HttpOnly, SameSite=Strict cookie scoped to ``/app``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from importlib import resources
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from interop.api.tokens import TokenError, TokenVerifier
from interop.config import Settings
from interop.reports.program import program_rows
from interop.reports.service import (
    SNAPSHOT_TYPES,
    adherence_of,
    forecast_of,
    last_year,
    population_results,
    program_of,
    snapshot,
)
from interop.store.base import Repository
from interop.sync import load_settings
from interop.web.board import (
    Board,
    Directory,
    adherence_view,
    calendar,
    follow_ups,
    forecast_view,
    patient_name,
    patient_rows,
    plan_view,
    queue,
)

COOKIE = "interop_token"
MAX_LOGIN_BYTES = 16384
STATIC = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}
FORECAST_DAYS = 14

_templates = Environment(
    loader=PackageLoader("interop.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _today(request: Request, settings: Settings) -> date:
    """``?today=YYYY-MM-DD`` (for demos and tests), else the date in the pharmacy's time zone."""
    raw = request.query_params.get("today")
    if raw:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise HTTPException(400, f"today {raw!r} is not a date (YYYY-MM-DD)") from None
    return datetime.now(ZoneInfo(settings.pharmacy_time_zone)).date()


def _page(template: str, **values: object) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(template).render(**values))


class Refused(Exception):
    """A page request without a usable token: 401 (none, invalid, expired) or 403 (grants too narrow)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Guard:
    """Checks the caller's bearer token (header, else the login cookie) when authorization is on."""

    def __init__(self, settings: Settings) -> None:
        self.verifier = TokenVerifier(settings) if settings.auth_enabled else None

    def check(self, authorization: str | None) -> None:
        """Refused unless the token is valid and grants user/system read (``r``) of every SNAPSHOT_TYPES type."""
        if self.verifier is None:
            return
        try:
            principal = self.verifier.verify(authorization)
        except TokenError as exc:
            raise Refused(401, str(exc)) from exc
        missing = [t for t in SNAPSHOT_TYPES if principal.grants.mode(t, "r") != "all"]
        if missing:
            raise Refused(403, "the token does not grant user or system read of " + ", ".join(missing))

    def request(self, request: Request) -> None:
        header = request.headers.get("authorization")
        cookie = request.cookies.get(COOKIE)
        self.check(header or (f"Bearer {cookie}" if cookie else None))


def _login_page(refused: Refused, query: str) -> HTMLResponse:
    page = _templates.get_template("login.html").render(reason=refused.reason, query=query, today=None)
    headers = {"WWW-Authenticate": 'Bearer realm="medsync-interop"'} if refused.status == 401 else {}
    return HTMLResponse(page, refused.status, headers=headers)


def staff_router(repo: Repository, settings: Settings) -> APIRouter:
    """The ``/app`` pages over ``repo`` (each request reads a fresh snapshot of the store)."""
    router = APIRouter(prefix="/app", include_in_schema=False)
    guard = Guard(settings)

    @router.post("/login")
    async def login(request: Request) -> Response:
        body = await request.body()
        token = (parse_qs(body[:MAX_LOGIN_BYTES].decode("utf-8", "replace")).get("token") or [""])[0].strip()
        try:
            guard.check(f"Bearer {token}" if token else None)
        except Refused as refused:
            return _login_page(refused, _query(request))
        done = RedirectResponse(f"/app{_query(request)}", 303)
        done.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/app",
                        secure=request.url.scheme == "https")
        return done

    @router.post("/logout")
    def logout(request: Request) -> Response:
        done = RedirectResponse(f"/app{_query(request)}", 303)
        done.delete_cookie(COOKIE, path="/app")
        return done

    @router.get("", response_class=HTMLResponse)
    def board(request: Request) -> HTMLResponse:
        try:
            guard.request(request)
        except Refused as refused:
            return _login_page(refused, _query(request))
        today = _today(request, settings)
        snap = snapshot(repo)
        people = Directory(snap.of("Patient"), snap.of("CarePlan"))
        start, end = last_year(today)
        forecast = forecast_of(snap, today, FORECAST_DAYS, load_settings().prep_lead_days)
        chart, drugs = forecast_view(forecast)
        view = Board(
            today,
            queue(snap.of("Task"), people, today),
            calendar(snap.of("Appointment"), people, today),
            follow_ups(snap.of("Task"), people),
            patient_rows(snap.of("Patient"), people, population_results(snap, start, end)),
            chart,
            drugs,
            forecast.problems,
            program_rows(program_of(snap, date(today.year, 1, 1), date(today.year, 12, 31), today)),
        )
        return _page("board.html", board=view, chart=Markup(chart), today=today,
                     query=_query(request), signed_in=guard.verifier is not None)

    @router.get("/patient/{patient_id}", response_class=HTMLResponse)
    def patient(request: Request, patient_id: str) -> HTMLResponse:
        try:
            guard.request(request)
        except Refused as refused:
            return _login_page(refused, _query(request))
        today = _today(request, settings)
        snap = snapshot(repo)
        found = next((p for p in snap.of("Patient") if p.get("id") == patient_id), None)
        if found is None:
            raise HTTPException(404, f"Patient/{patient_id} is not known")
        ref = f"Patient/{patient_id}"
        people = Directory(snap.of("Patient"), snap.of("CarePlan"))
        mine = {t: [r for r in snap.of(t) if _about(r, ref)] for t in ("Task", "Appointment", "MedicationDispense",
                                                                          "Encounter", "Condition")}
        by_ref = {f"{r['resourceType']}/{r['id']}": r for t in ("Task", "Appointment") for r in mine[t]}
        start, end = last_year(today)
        adherence = adherence_view(adherence_of(mine["MedicationDispense"], mine["Encounter"], mine["Condition"],
                                                ref, start, end))
        plan = plan_view(people.plans.get(ref), by_ref)
        recent = sorted(mine["MedicationDispense"], key=lambda d: str(d.get("whenHandedOver", "")), reverse=True)
        return _page("patient.html", name=patient_name(found), patient=found, plan=plan, adherence=adherence,
                     chart=Markup(adherence.chart), today=today, query=_query(request),
                     dispenses=[_dispense_row(d) for d in recent[:12]], since=today - timedelta(days=364),
                     signed_in=guard.verifier is not None)

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            raise HTTPException(404, f"no static file {name!r}")
        body = resources.files("interop.web").joinpath("static", name).read_bytes()
        return Response(body, media_type=STATIC[name], headers={"Cache-Control": "max-age=300"})

    return router


def _query(request: Request) -> str:
    """The ``today`` override carried over to links (empty when the real date is used)."""
    raw = request.query_params.get("today")
    return f"?today={raw}" if raw else ""


def _about(resource: dict[str, object], ref: str) -> bool:
    for key in ("subject", "for", "patient"):
        value = resource.get(key)
        if isinstance(value, dict) and value.get("reference") == ref:
            return True
    participants = resource.get("participant")
    if isinstance(participants, list):
        return any(isinstance(p, dict) and (p.get("actor") or {}).get("reference") == ref for p in participants)
    return False


def _dispense_row(dispense: dict[str, object]) -> tuple[str, str, str, str]:
    med = dispense.get("medicationCodeableConcept")
    name = str(med.get("text", "")) if isinstance(med, dict) else ""
    supply = dispense.get("daysSupply")
    days = str(supply.get("value", "")) if isinstance(supply, dict) else ""
    return str(dispense.get("whenHandedOver", ""))[:10], name, days, str(dispense.get("status", ""))
