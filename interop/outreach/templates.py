"""Message templates as data (mappings/outreach/*.json), rendered within the TCPA 160-character budget.

Each file holds ``kind``, ``subject`` (e-mail), ``text`` (minimum-necessary wording, HIPAA 45 CFR
164.502(b)) and optionally ``detail_text`` naming ``{drugs}`` for patients who opted in; placeholders are
``{pharmacy}``, ``{date}`` and ``{drugs}``. A directory given in settings overrides files by name.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from interop.outreach.policy import STOP_HINT
from interop.outreach.vocabulary import KINDS

MAX_CHARS = 160


class TemplateError(ValueError):
    """A template file is malformed, or a rendering breaks the budget or omits the required parts."""


@dataclass(frozen=True, slots=True)
class Template:
    kind: str
    subject: str
    text: str
    detail_text: str | None = None


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered message: ``detail`` says the text names drugs (the policy checks the opt-in)."""

    kind: str
    text: str
    subject: str
    detail: bool


def _template(source: str, raw: Any) -> Template:
    if not isinstance(raw, dict):
        raise TemplateError(f"{source}: a JSON object is expected")
    missing = [k for k in ("kind", "subject", "text") if not isinstance(raw.get(k), str) or not raw[k]]
    if missing:
        raise TemplateError(f"{source}: missing or empty {', '.join(missing)}")
    detail = raw.get("detail_text")
    if detail is not None and not isinstance(detail, str):
        raise TemplateError(f"{source}: detail_text must be a string")
    return Template(raw["kind"], raw["subject"], raw["text"], detail)


def load_templates(override_dir: str = "") -> dict[str, Template]:
    """The shipped templates by kind, each replaced by ``override_dir/<kind>.json`` when that file exists."""
    shipped = resources.files("mappings.outreach")
    table: dict[str, Template] = {}
    for kind in KINDS:
        if kind == "reply":
            continue
        name = f"{kind}.json"
        path = Path(override_dir) / name if override_dir else None
        source = str(path) if path and path.is_file() else f"mappings/outreach/{name}"
        text = path.read_text(encoding="utf-8") if path and path.is_file() else shipped.joinpath(name).read_text(encoding="utf-8")
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TemplateError(f"{source}: line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
        template = _template(source, raw)
        if template.kind != kind:
            raise TemplateError(f"{source}: kind {template.kind!r} does not match the file name")
        table[kind] = template
    return table


def spoken_date(day: date) -> str:
    """A short date for a text message: ``Mon Dec 7``."""
    return f"{day:%a %b} {day.day}"


def _fill(template: str, pharmacy: str, day: date, drugs: Sequence[str]) -> str:
    try:
        return template.format(pharmacy=pharmacy, date=spoken_date(day), drugs=", ".join(drugs))
    except (KeyError, IndexError, ValueError) as exc:
        raise TemplateError(f"template {template!r}: bad placeholder ({exc})") from exc


def render(
    template: Template, *, pharmacy: str, day: date, drugs: Sequence[str] = (), detail: bool = False
) -> Rendered:
    """``template`` filled in; the detail wording only when ``detail`` (opted in) and it fits in 160 characters.

    Raises TemplateError when the plain wording is too long or lacks the pharmacy name or the STOP hint.
    """
    if detail and drugs and template.detail_text:
        text = _fill(template.detail_text, pharmacy, day, drugs)
        if len(text) <= MAX_CHARS:
            return Rendered(template.kind, _checked(template.kind, text, pharmacy), _fill(template.subject, pharmacy, day, ()), True)
    text = _fill(template.text, pharmacy, day, ())
    if len(text) > MAX_CHARS:
        raise TemplateError(f"{template.kind}: {len(text)} characters rendered, more than {MAX_CHARS}")
    return Rendered(template.kind, _checked(template.kind, text, pharmacy), _fill(template.subject, pharmacy, day, ()), False)


def _checked(kind: str, text: str, pharmacy: str) -> str:
    if pharmacy not in text:
        raise TemplateError(f"{kind}: the rendered text does not name the pharmacy")
    if kind != "opt-out-confirmation" and STOP_HINT not in text:
        raise TemplateError(f"{kind}: the rendered text lacks {STOP_HINT!r}")
    return text
