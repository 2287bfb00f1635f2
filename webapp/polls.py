"""Public voting web for non-members: poll pages, SMS codes, ballots, results, and the ledger's JSON for verifiers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import FormData

from bot.app_state import sessions_of
from bot.client_address import client_key
from civic import polls, verification
from civic.db import session_scope, utcnow
from civic.errors import InvalidPhone
from civic.i18n import DEFAULT_LANGUAGE, LANGUAGE_NAMES, LANGUAGES, format_date
from civic.models import Poll
from civic.phones import normalize_phone
from civic.poll_texts import SMS_TEXT, TEXTS, text, wait_text
from civic.polls import PollError, PollSummary, VoterProof, summarize
from civic.settings import get_settings
from civic.verification import send_verification_code
from civic.votes import BallotBox, VoteOutcome, VoteRequest

HERE = Path(__file__).parent
COOKIE = "civic_polls"
CSRF_PURPOSE = "polls-csrf"  # not the web chat's "csrf": a token of one page never passes the other
STATIC_URL = "/static"
RECENTLY_CLOSED = timedelta(days=30)
PUBLIC_STATUSES = (polls.APPROVED, polls.CLOSED)  # pending and rejected citizen polls are not public
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(tags=["polls"])


def pick_language(request: Request, explicit: str | None = None) -> str:
    """`?lang=` (or the form's `lang`) when supported, else the best of Accept-Language, else Korean."""
    if explicit in LANGUAGES:
        return str(explicit)
    ranked = []
    for order, part in enumerate(request.headers.get("accept-language", "").split(",")[:20]):
        tag, *params = part.strip().split(";")
        weight = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        ranked.append((-weight, order, tag.split("-")[0].strip().lower()))
    for negative_weight, _, primary in sorted(ranked):
        if negative_weight < 0 and primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE


def _when(moment: datetime, lang: str) -> str:
    local = moment.astimezone(ZoneInfo(get_settings().timezone))
    return f"{format_date(local.date(), lang)} {local:%H:%M} {local:%Z}".strip()


# ---- CSRF: a random browser cookie and an HMAC of it in every form ------------------------------------------------


def csrf_token(browser_id: str) -> str:
    key = get_settings().secret_key.encode()
    return hmac.new(key, f"{CSRF_PURPOSE}:{browser_id}".encode(), hashlib.sha256).hexdigest()


def _csrf_ok(request: Request, form: FormData) -> bool:
    browser_id = request.cookies.get(COOKIE)
    given = str(form.get("csrf_token") or "")
    if not browser_id or len(browser_id) > 64 or not given:
        return False
    return hmac.compare_digest(given, csrf_token(browser_id))


# ---- what a page shows of a poll ----------------------------------------------------------------------------------


def public_poll(session: Session, public_id: str) -> Poll | None:
    poll = polls.poll_by_public_id(session, public_id[:32])
    return poll if poll is not None and poll.status in PUBLIC_STATUSES else None


def _load_view(request: Request, public_id: str) -> PollSummary | None:
    with session_scope(sessions_of(request)) as session:
        poll = public_poll(session, public_id)
        return summarize(poll, utcnow()) if poll is not None else None


@dataclass
class VoteForm:
    """What the poll page's form posts; every field optional, checked by the handler."""

    lang: str | None = None
    phone: str = ""
    code: str = ""
    option: int | None = None
    password: str = ""
    qr_token: str = ""
    latitude: float | None = None
    longitude: float | None = None

    @classmethod
    def parse(cls, form: FormData) -> VoteForm:
        def field_text(name: str, limit: int = 200) -> str:
            value = form.get(name)
            return value.strip()[:limit] if isinstance(value, str) else ""

        option = field_text("option", 4)
        latitude = _coordinate(field_text("lat", 32), 90)
        longitude = _coordinate(field_text("lon", 32), 180)
        return cls(
            lang=field_text("lang", 2) or None,
            phone=field_text("phone", 40),
            code=field_text("code", 12),
            option=int(option) if option.isdigit() else None,
            password=field_text("password"),
            qr_token=field_text("t", 100),
            latitude=latitude if longitude is not None else None,
            longitude=longitude if latitude is not None else None,
        )

    def proof(self) -> VoterProof:
        return VoterProof(self.password or None, self.qr_token or None, self.latitude, self.longitude)


def _coordinate(value: str, bound: float) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and -bound <= number <= bound else None


def _language_links(path: str, qr_token: str = "") -> list[tuple[str, str, str]]:
    links = []
    for code in LANGUAGES:
        query = {"lang": code} | ({"t": qr_token} if qr_token else {})
        links.append((code, LANGUAGE_NAMES[code], f"{path}?{urlencode(query)}"))
    return links


def _render(request: Request, name: str, lang: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    context |= {
        "lang": lang,
        "tr": lambda key, **values: text(key, lang, **values),
        "when": lambda moment: _when(moment, lang),
        "static_url": STATIC_URL,
    }
    context.setdefault("language_links", _language_links(request.url.path))
    response = templates.TemplateResponse(request, f"polls/{name}", context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"  # pages carry this browser's CSRF token or a receipt
    return response


def _message_page(request: Request, lang: str, key: str, status_code: int) -> HTMLResponse:
    return _render(request, "message.html", lang, status_code=status_code, message=text(key, lang))


def _poll_page(
    request: Request,
    poll: PollSummary,
    lang: str,
    form: VoteForm,
    *,
    notice: str = "",
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    browser_id = request.cookies.get(COOKIE)
    new_cookie = not browser_id or len(browser_id) > 64
    if new_cookie:
        browser_id = secrets.token_urlsafe(24)
    assert browser_id is not None
    response = _render(
        request,
        "poll.html",
        lang,
        status_code=status_code,
        poll=poll,
        form=form,
        notice=notice,
        error=error,
        csrf_token=csrf_token(browser_id),
        language_links=_language_links(f"/polls/{poll.public_id}", form.qr_token),
    )
    if new_cookie:
        response.set_cookie(
            COOKIE,
            browser_id,
            max_age=30 * 24 * 3600,
            httponly=True,
            samesite="lax",
            secure=get_settings().environment == "production",
        )
    return response


# ---- pages --------------------------------------------------------------------------------------------------------


@router.get("/polls", response_class=HTMLResponse)
def list_page(request: Request, lang: str | None = None) -> HTMLResponse:
    language = pick_language(request, lang)
    now = utcnow()
    with session_scope(sessions_of(request)) as session:
        open_now = [summarize(poll, now) for poll in polls.open_polls(session, now)]
        recently_closed = session.execute(
            select(Poll)
            .where(Poll.status.in_(PUBLIC_STATUSES), Poll.closes_at <= now, Poll.closes_at > now - RECENTLY_CLOSED)
            .order_by(Poll.closes_at.desc(), Poll.id.desc())
            .limit(20)
        ).scalars()
        closed = [summarize(poll, now) for poll in recently_closed]
    return _render(request, "list.html", language, open_polls=open_now, closed_polls=closed)


@router.get("/polls/{public_id}", response_class=HTMLResponse)
def poll_page(request: Request, public_id: str, lang: str | None = None, t: str = "") -> HTMLResponse:
    language = pick_language(request, lang)
    poll = _load_view(request, public_id)
    if poll is None:
        return _message_page(request, language, "no_poll", 404)
    return _poll_page(request, poll, language, VoteForm(lang=language, qr_token=t.strip()[:100]))


def _issue_and_queue(
    factory: sessionmaker[Session], poll: PollSummary, phone_e164: str, lang: str, browser_id: str, client: str
) -> None:
    send_verification_code(
        factory,
        phone_e164=phone_e164,
        purpose=_purpose(poll, browser_id),
        budget=_budget(poll),
        client=client,
        sms_text=lambda code: SMS_TEXT[lang].format(code=code),
        language=lang,
    )


def _budget(poll: PollSummary) -> str:
    """What the send limits count by: the poll (a phone's codes for one poll, whoever asks)."""
    return f"poll:{poll.public_id}"


def _purpose(poll: PollSummary, browser_id: str) -> str:
    """The poll and the browser that asked: someone else asking a code for the same phone gets a code of their
    own, which neither replaces the voter's code nor can be spent by guesses from the voter's page."""
    browser = hmac.new(get_settings().secret_key.encode(), f"polls-browser:{browser_id}".encode(), hashlib.sha256)
    return f"{_budget(poll)}:{browser.hexdigest()[:16]}"


@dataclass
class Posted:
    """A form posted to a public poll's page that carried this browser's CSRF token."""

    values: VoteForm
    lang: str
    poll: PollSummary
    browser_id: str


async def _posted(request: Request, public_id: str) -> Posted | HTMLResponse:
    """The posted form, or the page that refuses it: 403 without the CSRF token, 404 for no such public poll."""
    form = await request.form()
    values = VoteForm.parse(form)
    lang = pick_language(request, values.lang)
    if not _csrf_ok(request, form):
        return _message_page(request, lang, "csrf", 403)
    poll = await asyncio.to_thread(_load_view, request, public_id)
    if poll is None:
        return _message_page(request, lang, "no_poll", 404)
    browser_id = str(request.cookies.get(COOKIE))  # _csrf_ok checked it is there
    return Posted(values, lang, poll, browser_id)


@router.post("/polls/{public_id}/code", response_class=HTMLResponse)
async def send_code(request: Request, public_id: str) -> HTMLResponse:
    posted = await _posted(request, public_id)
    if isinstance(posted, HTMLResponse):
        return posted
    values, lang, poll = posted.values, posted.lang, posted.poll
    values.code = ""
    if poll.state != "open":
        return _poll_page(request, poll, lang, values, error=text("not_open", lang), status_code=403)
    try:
        phone_e164 = normalize_phone(values.phone)
    except InvalidPhone:
        return _poll_page(request, poll, lang, values, error=text("invalid_phone", lang), status_code=422)
    # Codes are sent to numbers off a poll's roll too: refusing them here would tell anyone who is on it.
    try:
        await asyncio.to_thread(
            _issue_and_queue, sessions_of(request), poll, phone_e164, lang, posted.browser_id, client_key(request)
        )
    except verification.VerificationError as refusal:
        return _refused_page(request, poll, lang, values, refusal)
    notice = text("code_sent", lang, last4=phone_e164[-4:])
    return _poll_page(request, poll, lang, values, notice=notice)


def _refused_page(
    request: Request, poll: PollSummary, lang: str, values: VoteForm, refusal: verification.VerificationError
) -> HTMLResponse:
    """A send or check the limits refused: the reason, the wait, 429 and Retry-After (422 for a number codes
    never go to)."""
    if refusal.retry_after_seconds is None:
        return _poll_page(request, poll, lang, values, error=text(refusal.code, lang), status_code=422)
    wait = refusal.retry_after_seconds
    error = text(refusal.code, lang, wait=wait_text(wait, lang))
    response = _poll_page(request, poll, lang, values, error=error, status_code=429)
    response.headers["Retry-After"] = str(wait)
    return response


def _precheck(factory: sessionmaker[Session], poll_id: int, phone_e164: str, values: VoteForm) -> str | None:
    """Refusals that need no secret, found before the code is spent: a voter who forgot to share a
    location keeps their code. Passwords and the roll are checked only after the code, so that each
    password guess (and each look at the roll) costs a verified phone."""
    assert values.option is not None
    with session_scope(factory) as session:
        poll = session.get(Poll, poll_id)
        if poll is None or not polls.is_open(poll, utcnow()):
            return "not_open"
        if values.option not in {option.position for option in poll.options}:
            return "bad_option"
        if poll.visibility == "password" and not values.password:
            return "password_needed"
        if poll.visibility in ("public", "qr", "gps"):
            try:
                polls.check_eligibility(session, poll, phone_e164, values.proof(), utcnow())
            except PollError as error:
                return error.code
    return None


def _spend_code(
    factory: sessionmaker[Session], poll: PollSummary, phone_e164: str, code: str, browser_id: str, client: str
) -> verification.VerificationError | None:
    """Checks and spends the code; returns why it was refused. Commits either way: wrong tries must count."""
    with session_scope(factory) as session:
        try:
            verification.check_code(
                session,
                phone_e164=phone_e164,
                purpose=_purpose(poll, browser_id),
                code=code,
                budget=_budget(poll),
                client=client,
                now=utcnow(),
            )
        except verification.VerificationError as refusal:
            return refusal
    return None


@router.post("/polls/{public_id}/vote", response_class=HTMLResponse)
async def vote(request: Request, public_id: str) -> HTMLResponse:
    posted = await _posted(request, public_id)
    if isinstance(posted, HTMLResponse):
        return posted
    values, lang, poll = posted.values, posted.lang, posted.poll
    code, values.code = values.code, ""

    def again(key: str, status_code: int, **extra: object) -> HTMLResponse:
        return _poll_page(request, poll, lang, values, error=text(key, lang, **extra), status_code=status_code)

    if values.option is None:
        return again("choose_option", 422)
    try:
        phone_e164 = normalize_phone(values.phone)
    except InvalidPhone:
        return again("invalid_phone", 422)
    if not code:
        return again("enter_code", 422)
    factory = sessions_of(request)
    refusal = await asyncio.to_thread(_precheck, factory, poll.id, phone_e164, values)
    if refusal:
        return again(refusal, 403)
    spent = await asyncio.to_thread(
        _spend_code, factory, poll, phone_e164, code, posted.browser_id, client_key(request)
    )
    if spent is not None:
        if spent.retry_after_seconds is not None:  # the checks' limit: wait, not a wrong code
            return _refused_page(request, poll, lang, values, spent)
        return again(spent.code, 400)
    ballot_box: BallotBox = request.app.state.ballot_box
    ballot = VoteRequest(phone_e164, values.option, channel="web", proof=values.proof())
    outcome = await ballot_box.cast(poll.id, ballot)
    if outcome.status == "refused":
        reason = outcome.reason if outcome.reason in TEXTS else "not_open"
        error = f"{text(reason, lang)} {text('new_code_needed', lang)}"
        return _poll_page(request, poll, lang, values, error=error, status_code=403)
    return _receipt_page(request, poll, lang, outcome)


def _receipt_page(request: Request, poll: PollSummary, lang: str, outcome: VoteOutcome) -> HTMLResponse:
    receipt = outcome.receipt.to_dict() if outcome.receipt else None
    proof_url = (
        f"/api/polls/{poll.public_id}/proof/inclusion?{urlencode({'receipt': receipt['receipt']})}" if receipt else ""
    )
    return _render(
        request,
        "receipt.html",
        lang,
        poll=poll,
        status=outcome.status,
        receipt=receipt,
        proof_url=proof_url,
        language_links=_language_links(f"/polls/{poll.public_id}"),
    )


CHART_LABEL_CHARS = 40  # what fits one line of the 720-unit chart; the full label stays in the bar's <title>


@dataclass(frozen=True)
class Bar:
    label: str
    short_label: str
    count: int
    pct: str
    width: float
    y: int


@dataclass(frozen=True)
class Chart:
    """A horizontal bar chart laid out for inline SVG: one row per option, bars scaled to the vote share."""

    bars: list[Bar] = field(default_factory=list)
    total: int = 0
    width: int = 720
    bar_max: int = 500
    row: int = 56

    @property
    def height(self) -> int:
        return max(1, len(self.bars)) * self.row

    @property
    def summary(self) -> str:
        return ", ".join(f"{bar.label}: {bar.count} ({bar.pct}%)" for bar in self.bars)


def _chart(options: Sequence[tuple[int, str]], counts: dict[int, int]) -> Chart:
    total = sum(counts.values())
    chart = Chart(total=total)
    for row, (position, label) in enumerate(options):
        count = counts.get(position, 0)
        share = count / total if total else 0.0
        width = round(share * chart.bar_max, 1)
        short = label if len(label) <= CHART_LABEL_CHARS else label[: CHART_LABEL_CHARS - 1] + "…"
        chart.bars.append(Bar(label, short, count, f"{share * 100:.1f}", width, row * chart.row))
    return chart


@router.get("/polls/{public_id}/results", response_class=HTMLResponse)
def results_page(request: Request, public_id: str, lang: str | None = None) -> HTMLResponse:
    language = pick_language(request, lang)
    with session_scope(sessions_of(request)) as session:
        poll = public_poll(session, public_id)
        if poll is None:
            return _message_page(request, language, "no_poll", 404)
        view = summarize(poll, utcnow())
        chart = _chart(view.options, polls.tally(session, poll)) if view.results_visible else None
        final = poll.status == polls.CLOSED
    return _render(request, "results.html", language, poll=view, chart=chart, final=final)
