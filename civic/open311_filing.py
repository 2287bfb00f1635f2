"""Open311 POST requests: checked, located in Seoul, filed through civic.cases like a chat report, idempotent."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from civic import geo
from civic.api_keys import take_write, verify_key
from civic.cases import file_case
from civic.console_accounts import record
from civic.db import utcnow
from civic.districts import city_outside_seoul, resolve_district
from civic.errors import InvalidPhone
from civic.i18n import category_label, format_date, language
from civic.models import Case, Department
from civic.open311 import Open311Error, check_jurisdiction, check_service
from civic.phones import normalize_phone, seal, unseal

CHANNEL = "open311"
MAX_DESCRIPTION_CHARS = 4000
MAX_FIELD_CHARS = 200
MAX_URL_CHARS = 2000
RESEND_WINDOW_SECONDS = 600  # the same key and body within 10 minutes is the same request
CONTACT_AAD = b"civic.cases.contact"
_HTML = re.compile(r"<\s*/?\s*[a-zA-Z!][^>]*>|&(?:[a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_SPLIT = re.compile(r"[\s,()]+")
# Built once: this path runs on every POST, and building a statement costs more than running it.
_BY_IDEMPOTENCY_KEY = select(Case.id, Case.created_at).where(Case.idempotency_key == bindparam("b_key"))
_DEPARTMENT_NAMES = select(Department.name_ko, Department.name_en, Department.name_ja).where(
    Department.id == bindparam("b_id")
)
NOTICE = {
    "ko": "{department}에서 {due}까지 처리합니다.",
    "en": "{department} will handle it by {due}.",
    "ja": "{department}が{due}までに処理します。",
}


@dataclass(frozen=True)
class RequestForm:
    """The POST's form fields as sent (strings, "" when absent); `attributes` holds attribute[code] values."""

    service_code: str
    lat: str = ""
    long: str = ""
    address_string: str = ""
    description: str = ""
    media_url: str = ""
    email: str = ""
    phone: str = ""
    first_name: str = ""
    last_name: str = ""
    jurisdiction_id: str = ""
    attributes: dict[str, str] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """SHA-256 of every field: equal bodies give equal fingerprints, whatever the order they were sent in."""
        fields = {name: value for name, value in vars(self).items() if name != "attributes"}
        canonical = json.dumps([fields, sorted(self.attributes.items())], ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Filed:
    """What a POST answers: the case number, a notice of who handles it by when, and whether it was a resend."""

    number: str
    notice: str
    replayed: bool


@dataclass(frozen=True)
class _Place:
    district: str
    dong: str | None
    place: str
    latitude: float | None
    longitude: float | None


def authorize_write(session: Session, *, api_key: str) -> tuple[int, str]:
    """The key's id and name when `api_key` is live and under its rate limit; Open311Error 403 or 429 otherwise."""
    key = verify_key(session, secret=api_key) if api_key else None
    if key is None:
        raise Open311Error(403, "api_key is missing or invalid")
    decision = take_write(session, key=key)
    if not decision.allowed:
        raise Open311Error(429, f"too many requests for this api_key; retry in {decision.retry_after_seconds} s")
    return key.id, key.name


def _coordinate(value: str, name: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise Open311Error(400, f"{name} must be a number in degrees (WGS84)") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise Open311Error(400, f"{name} is out of range")
    return number


def _district_in(text: str) -> str | None:
    for word in _SPLIT.split(text):
        district = resolve_district(word)
        if district is not None:
            return district
    return None


def _locate(form: RequestForm) -> _Place:
    named_place = form.attributes.get("place", "").strip()[:MAX_FIELD_CHARS]
    address = form.address_string.strip()[:MAX_FIELD_CHARS]
    if form.lat or form.long:
        if not (form.lat and form.long):
            raise Open311Error(400, "lat and long must be sent together")
        lat = _coordinate(form.lat, "lat", -90, 90)
        lon = _coordinate(form.long, "long", -180, 180)
        found = geo.locate(lat, lon)
        if found is None:
            raise Open311Error(
                400, f"the point {lat}, {lon} is outside Seoul: this endpoint takes reports in Seoul only"
            )
        place = named_place or address or f"{lat:.6f}, {lon:.6f}"
        return _Place(found.gu_ko, found.dong_ko, place, lat, lon)
    outside = city_outside_seoul(address) if address else None
    if outside is not None:
        raise Open311Error(400, f"address_string names {outside[2].en} ({outside[2].ko}), outside Seoul")
    district = _district_in(address) or resolve_district(form.attributes.get("district", "").strip())
    if district is None:
        if not address and not form.attributes.get("district"):
            raise Open311Error(400, "a location is required: lat and long, or address_string (with the gu)")
        raise Open311Error(400, "address_string names no Seoul gu (e.g. 마포구, Mapo-gu); send lat and long instead")
    return _Place(district, None, named_place or address or district, None, None)


def _description(form: RequestForm) -> str:
    description = form.description.strip()
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise Open311Error(400, f"description has more than {MAX_DESCRIPTION_CHARS} characters")
    if _HTML.search(description):
        raise Open311Error(400, "description must be plain text: HTML is refused")
    media_url = form.media_url.strip()
    if media_url:
        parts = urlsplit(media_url)
        if len(media_url) > MAX_URL_CHARS or parts.scheme not in ("http", "https") or not parts.netloc:
            raise Open311Error(400, "media_url must be an http(s) URL")
        description = f"{description}\n\nmedia_url: {media_url}".strip()
    return description or category_label(form.service_code, "ko")


def _sealed_contact(form: RequestForm) -> bytes | None:
    """The reporter's contact as AES-GCM ciphertext (the phones' key, its own associated data), or None."""
    contact: dict[str, str] = {}
    if form.email.strip():
        if len(form.email) > 254 or not _EMAIL.fullmatch(form.email.strip()):
            raise Open311Error(400, "email is not an email address")
        contact["email"] = form.email.strip()
    if form.phone.strip():
        try:
            contact["phone"] = normalize_phone(form.phone.strip())
        except InvalidPhone:
            raise Open311Error(400, "phone is not a valid phone number") from None
    for name in ("first_name", "last_name"):
        value = getattr(form, name).strip()
        if len(value) > MAX_FIELD_CHARS:
            raise Open311Error(400, f"{name} has more than {MAX_FIELD_CHARS} characters")
        if value:
            contact[name] = value
    return seal(json.dumps(contact, ensure_ascii=False), CONTACT_AAD) if contact else None


def contact_of(case: Case) -> dict[str, str]:
    """The reporter's contact an Open311 client sent with the case (for the console; never for GET)."""
    if case.contact_ciphertext is None:
        return {}
    contact: dict[str, str] = json.loads(unseal(case.contact_ciphertext, CONTACT_AAD))
    return contact


def _keys(key_id: int, form: RequestForm, header: str, now: datetime) -> tuple[str, str | None]:
    """This request's idempotency key, and the one a resend within the last 10 minutes may have left."""
    if header:
        return f"open311:{key_id}:h:{hashlib.sha256(header.encode()).hexdigest()[:40]}", None
    window = int(now.timestamp()) // RESEND_WINDOW_SECONDS
    base = f"open311:{key_id}:b:{form.fingerprint()[:40]}"
    # Windows are fixed 10-minute slots: a resend in the next slot finds the first by the previous slot's key.
    return f"{base}:{window}", f"{base}:{window - 1}"


def _existing(session: Session, key: str | None, since: datetime | None) -> Case | None:
    if key is None:
        return None
    row = session.connection().execute(_BY_IDEMPOTENCY_KEY, {"b_key": key}).one_or_none()
    if row is None or (since is not None and row.created_at < since):
        return None
    return session.get_one(Case, row.id)


def _notice(session: Session, case: Case, lang: str) -> str:
    # The department's names are read, not cached: admins rename departments in the console.
    names = session.execute(_DEPARTMENT_NAMES, {"b_id": case.department_id}).one()
    department = {"ko": names.name_ko, "en": names.name_en, "ja": names.name_ja}[lang]
    return NOTICE[lang].format(department=department, due=format_date(case.due_at, lang))


def file_request(
    session: Session,
    *,
    key_id: int,
    key_name: str,
    form: RequestForm,
    idempotency_header: str = "",
    lang: str = "ko",
    ip: str | None = None,
) -> Filed:
    """Files the request as a case (channel open311), or returns the case a resend of it already filed."""
    check_jurisdiction(form.jurisdiction_id)
    check_service(form.service_code)
    description, place, contact = _description(form), _locate(form), _sealed_contact(form)
    now, lang = utcnow(), language(lang)
    key, previous = _keys(key_id, form, idempotency_header.strip()[:200], now)
    case = _existing(session, key, None) or _existing(session, previous, now - timedelta(seconds=RESEND_WINDOW_SECONDS))
    replayed = case is not None
    if case is None:
        case = file_case(
            session,
            category=form.service_code,
            district=place.district,
            dong=place.dong,
            place=place.place,
            description=description,
            latitude=place.latitude,
            longitude=place.longitude,
            channel=CHANNEL,
            language=lang,
            idempotency_key=key,
            actor=f"open311:{key_name}"[:64],
            contact_ciphertext=contact,  # a concurrent twin's case, handed back instead, keeps its own
        )
    details = {"api_key_id": key_id, "service_code": form.service_code, "replayed": replayed}
    record(
        session,
        "open311.request_filed",
        actor=f"api_key:{key_id}",
        target=f"case:{case.number}",
        details=details,
        ip=ip,
    )
    return Filed(number=case.number, notice=_notice(session, case, lang), replayed=replayed)
