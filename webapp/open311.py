"""Open311 GeoReport v2 under /open311/v2/: the format suffix picks JSON or XML; the work is in civic.open311."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from bot.app_state import sessions_of
from bot.client_address import client_address
from civic import open311, open311_updates
from civic.db import session_scope
from civic.i18n import LANGUAGES
from civic.open311 import Open311Error
from civic.open311_filing import Filed, RequestForm, authorize_write, file_request
from civic.settings import get_settings

PREFIX = "/open311/v2"
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-12-06T00:00:00+09:00"  # when this interface last changed (discovery's changeset)
MEDIA_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
# XML element names of list items (the Spark convention maps JSON arrays to repeated child elements).
ITEMS = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute", "values": "value"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
FORM_FIELDS = (
    "lat", "long", "address_string", "description", "media_url", "email", "phone", "first_name", "last_name",
    "jurisdiction_id",
)  # fmt: skip

router = APIRouter(prefix=PREFIX, tags=["open311"])


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    # XML 1.0 cannot carry most control characters, even escaped: a chat message may hold one.
    return escape(_CONTROL.sub("", str(value)))


def _xml(tag: str, value: Any, out: list[str]) -> None:
    """Appends `<tag>value</tag>`: a dict's items and a list's entries (named by ITEMS) as child elements."""
    if value is None:
        out.append(f"<{tag}/>")
        return
    out.append(f"<{tag}>")
    if isinstance(value, dict):
        for name, child in value.items():
            _xml(name, child, out)
    elif isinstance(value, list):
        for child in value:
            _xml(ITEMS.get(tag, "item"), child, out)
    else:
        out.append(_text(value))
    out.append(f"</{tag}>")


def to_xml(root: str, item: str | None, body: Any) -> bytes:
    """The spec's XML: `root` holding one `item` element per entry of a list body (or the dict body itself).

    Written as strings rather than through ElementTree: a page of 1,000 requests is 18,000 elements, and building
    them as objects tripled the time and its variance (garbage collection).
    """
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    if item is None:
        _xml(root, body, out)
    else:
        out.append(f"<{root}>")
        for entry in body:
            _xml(item, entry, out)
        out.append(f"</{root}>")
    return "".join(out).encode()


def render(fmt: str, root: str, item: str | None, body: Any, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(to_xml(root, item, body), status_code=status, media_type=MEDIA_TYPES["xml"])
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, status_code=status, media_type=MEDIA_TYPES["json"])


def error(fmt: str, failure: Open311Error) -> Response:
    """The spec's errors: an array of {code, description}, or <errors><error>…</error></errors>."""
    response = render(fmt if fmt in MEDIA_TYPES else "json", "errors", "error",
                      [{"code": failure.status, "description": failure.description}], failure.status)  # fmt: skip
    if failure.status == 429:
        response.headers["Retry-After"] = "60"
    return response


def _check_format(fmt: str) -> None:
    if fmt not in MEDIA_TYPES:
        raise Open311Error(404, "formats are json and xml: add .json or .xml to the resource")


def language_of(request: Request) -> str:
    """`locale` (ko, en, ja, en_US …) if given, else the first of our languages in Accept-Language, else Korean."""
    wanted = [request.query_params.get("locale", "")]
    wanted += [part.split(";")[0] for part in request.headers.get("accept-language", "").split(",")]
    for tag in wanted:
        code = tag.strip().lower().replace("_", "-").split("-")[0]
        if code in LANGUAGES:
            return code
    return "ko"


def _answer(request: Request, fmt: str, root: str, item: str | None, work: Callable[[Session], Any]) -> Response:
    try:
        _check_format(fmt)
        open311.check_jurisdiction(request.query_params.get("jurisdiction_id"))
        with session_scope(sessions_of(request)) as session:
            body = work(session)
    except Open311Error as failure:
        return error(fmt, failure)
    return render(fmt, root, item, body)


@router.get("/discovery.{fmt}")
def discovery(request: Request, fmt: str) -> Response:
    base = get_settings().public_base_url.rstrip("/")
    body = {
        "changeset": CHANGESET,
        "contact": "120 다산콜재단 · Seoul 120 Dasan Call Center, https://120dasan.or.kr",
        "key_service": "API keys are issued by the city's 120 administrators (console → admin → API keys).",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": f"{base}{PREFIX}",
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
    }
    return _answer(request, fmt, "discovery", None, lambda session: body)


@router.get("/services.{fmt}")
def services(request: Request, fmt: str) -> Response:
    lang = language_of(request)
    return _answer(request, fmt, "services", "service", lambda session: open311.services(lang=lang))


@router.get("/services/{service_code}.{fmt}")
def service_definition(request: Request, service_code: str, fmt: str) -> Response:
    lang = language_of(request)
    return _answer(
        request,
        fmt,
        "service_definition",
        None,
        lambda session: open311.service_definition(service_code=service_code, lang=lang),
    )


@router.get("/requests.{fmt}")
def requests(request: Request, fmt: str) -> Response:
    lang, params = language_of(request), request.query_params
    names = ("service_request_id", "service_code", "start_date", "end_date", "status", "page", "page_size")

    def work(session: Session) -> Any:
        query = open311.request_query(**{name: params.get(name, "") for name in names})
        return open311.find_requests(session, query=query, lang=lang)

    return _answer(request, fmt, "service_requests", "request", work)


@router.get("/requests/{service_request_id}.{fmt}")
def one_request(request: Request, service_request_id: str, fmt: str) -> Response:
    lang = language_of(request)
    return _answer(
        request,
        fmt,
        "service_requests",
        "request",
        lambda session: [open311.get_request(session, number=service_request_id, lang=lang)],
    )


@router.get("/servicerequestupdates.{fmt}")
def service_request_updates(request: Request, fmt: str) -> Response:
    """mySociety's extension, which FixMyStreet polls: status changes and public answers from start to end date."""
    params = request.query_params
    names = ("start_date", "end_date", "page", "page_size")

    def work(session: Session) -> Any:
        query = open311_updates.update_query(**{name: params.get(name, "") for name in names})
        return open311_updates.find_updates(session, query=query)

    return _answer(request, fmt, "service_request_updates", "request_update", work)


def _form(fields: Any) -> RequestForm:
    def text(name: str) -> str:
        value = fields.get(name)
        return value if isinstance(value, str) else ""

    attributes = {
        name[len("attribute[") : -1]: value
        for name, value in fields.multi_items()
        if name.startswith("attribute[") and name.endswith("]") and isinstance(value, str)
    }
    return RequestForm(service_code=text("service_code"), attributes=attributes, **{n: text(n) for n in FORM_FIELDS})


def _authorize_and_file(
    factory: sessionmaker[Session], secret: str, form: RequestForm, header: str, lang: str, ip: str
) -> Filed:
    # Both transactions on one connection: a pool checkout (with its liveness ping) costs a round trip.
    with factory.kw["bind"].connect() as connection:
        one_connection = sessionmaker(bind=connection, expire_on_commit=False)
        # The key is checked and counted in its own short transaction: the filing's commit never holds its row.
        with session_scope(one_connection) as session:
            key_id, key_name = authorize_write(session, api_key=secret)
        with session_scope(one_connection) as session:
            return file_request(
                session, key_id=key_id, key_name=key_name, form=form, idempotency_header=header, lang=lang, ip=ip
            )


@router.post("/requests.{fmt}")
async def post_request(request: Request, fmt: str) -> Response:
    """Files a service request; needs a live api_key (403), answers the new (or resent) request's id."""
    lang, ip, header = language_of(request), client_address(request), request.headers.get("idempotency-key", "")
    try:
        _check_format(fmt)
        fields = await request.form()
        form = _form(fields)
        if not form.service_code:
            raise Open311Error(400, "service_code is required")
        secret = fields.get("api_key")
        factory = sessions_of(request)
        filed = await run_in_threadpool(
            _authorize_and_file, factory, secret if isinstance(secret, str) else "", form, header, lang, ip
        )
    except Open311Error as failure:
        return error(fmt, failure)
    body = [{"service_request_id": filed.number, "service_notice": filed.notice, "account_id": None}]
    return render(fmt, "service_requests", "request", body)
