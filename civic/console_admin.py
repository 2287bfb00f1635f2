"""Console administration: users and roles, departments, the routing table, category deadlines, canned answers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import phonenumbers
from cryptography.exceptions import InvalidTag
from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session, joinedload

from civic import console_accounts as accounts
from civic import takeover
from civic.categories import CATEGORIES, MAX_DAYS, MIN_DAYS, check_category, processing_days
from civic.console_accounts import ROLES, ConsoleIdentity, can, record
from civic.console_cases import CLOSED, ActionRefused, PermissionDenied
from civic.db import Base, utcnow
from civic.districts import check_district
from civic.errors import InvalidPhone, UnknownCategory, UnknownDistrict
from civic.i18n import LANGUAGES
from civic.models import CannedAnswer, Case, CategoryDeadline, ConsoleUser, Department, RoutingOverride
from civic.phones import decrypt_phone, encrypt_phone, normalize_phone
from civic.routing import departments as routing_file_departments
from civic.routing import route_table

DEPARTMENT_CODE = re.compile(r"[a-z0-9-]{2,64}")
MAX_NAME_CHARS = 128  # departments.name_* and canned_answers.title
MAX_ANSWER_CHARS = 2000  # a canned answer is one chat message, sent as it stands


def _require(actor: ConsoleIdentity, permission: str) -> None:
    if not can(actor, permission):
        raise PermissionDenied(f"{actor.email} may not {permission}")


def _department_by_code(session: Session, code: str | None) -> Department | None:
    """The department with `code`; None when no code is given, ActionRefused when no department has it."""
    code = (code or "").strip()
    if not code:
        return None
    department = session.execute(select(Department).where(Department.code == code)).scalar_one_or_none()
    if department is None:
        raise ActionRefused("unknown_department")
    return department


# ---- users --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserRow:
    """One console user as the admin's list shows them: never the password hash, the desk phone masked."""

    id: int
    email: str
    role: str
    department_code: str | None
    department_name: str | None
    active: bool
    last_login_at: datetime | None
    desk_phone: str | None


def mask_phone(e164: str) -> str:
    """+821012345678 → "+82 10-****-5678": enough for the admin to recognise a line, not to dial it."""
    international = phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    country, _, national = international.partition(" ")
    first_group = len(national) - len(national.lstrip("0123456789"))
    total = sum(ch.isdigit() for ch in national)
    masked, seen = [], 0
    for position, ch in enumerate(national):
        if ch.isdigit():
            seen += 1
            ch = "*" if position >= first_group and seen <= total - 4 else ch
        masked.append(ch)
    return f"{country} {''.join(masked)}"


def desk_phone_of(user: ConsoleUser) -> str | None:
    """The E.164 desk line of an operator (decrypted), where a caller they take is bridged; None if unset."""
    return decrypt_phone(user.desk_phone_ciphertext) if user.desk_phone_ciphertext else None


def _masked_desk_phone(user: ConsoleUser) -> str | None:
    try:
        number = desk_phone_of(user)
    except InvalidTag:
        return "?"  # encrypted under another key: the list must still render, and the admin can set it again
    return mask_phone(number) if number else None


def _user_row(user: ConsoleUser) -> UserRow:
    return UserRow(
        id=user.id,
        email=user.email,
        role=user.role,
        department_code=user.department.code if user.department else None,
        department_name=user.department.name_ko if user.department else None,
        active=user.active,
        last_login_at=user.last_login_at,
        desk_phone=_masked_desk_phone(user),
    )


def list_users(session: Session, actor: ConsoleIdentity) -> list[UserRow]:
    """Every console user, by email."""
    _require(actor, "manage_users")
    query = select(ConsoleUser).options(joinedload(ConsoleUser.department)).order_by(ConsoleUser.email)
    return [_user_row(user) for user in session.execute(query).scalars()]


def _user(session: Session, user_id: int) -> ConsoleUser:
    user = session.get(ConsoleUser, user_id)
    if user is None:
        raise ActionRefused("unknown_user")
    return user


def _role_and_department(session: Session, role: str, department_code: str | None) -> Department | None:
    # An official acts for exactly one department; the other roles work for the whole city and keep none.
    if role not in ROLES:
        raise ActionRefused("unknown_role")
    if role != "official":
        return None
    department = _department_by_code(session, department_code)
    if department is None:
        raise ActionRefused("department_required")
    return department


def create_user(
    session: Session,
    actor: ConsoleIdentity,
    *,
    email: str,
    role: str,
    password: str,
    department_code: str | None = None,
    ip: str | None = None,
) -> ConsoleUser:
    """Adds a console user with an initial password (12+ characters); an official needs a department."""
    _require(actor, "manage_users")
    department = _role_and_department(session, role, department_code)
    try:
        address = accounts.normalize_email(email)
    except accounts.ConsoleAccountError:
        raise ActionRefused("bad_email") from None
    if accounts.find_user(session, address) is not None:
        raise ActionRefused("user_exists")
    try:
        return accounts.create_user(
            session,
            email=address,
            password=password,
            role=role,
            department_code=department.code if department else None,
            actor=actor.email,
            actor_id=actor.user_id,
            ip=ip,
        )
    except accounts.WeakPassword:
        raise ActionRefused("weak_password") from None


def change_role(
    session: Session,
    actor: ConsoleIdentity,
    user_id: int,
    *,
    role: str,
    department_code: str | None = None,
    ip: str | None = None,
) -> ConsoleUser:
    """Gives a user another role (and an official their department); an admin cannot demote themselves."""
    _require(actor, "manage_users")
    user = _user(session, user_id)
    department = _role_and_department(session, role, department_code)
    if user.id == actor.user_id and role != "admin":
        raise ActionRefused("self_demotion")  # so there is always an admin left to undo mistakes
    was = {"role": user.role, "department": user.department.code if user.department else None}
    user.role, user.department = role, department
    session.flush()
    details = {"role": role, "department": department.code if department else None, "was": was}
    record(session, "user.role_changed", by=actor, target=user.email, details=details, ip=ip)
    return user


def deactivate_user(session: Session, actor: ConsoleIdentity, user_id: int, *, ip: str | None = None) -> ConsoleUser:
    """Stops a user from logging in and ends their sessions; an admin cannot deactivate themselves."""
    _require(actor, "manage_users")
    user = _user(session, user_id)
    if user.id == actor.user_id:
        raise ActionRefused("self_deactivation")
    takeover.release_all_held_by(session, user.id)  # their citizens go back to the bot, not into silence
    return accounts.deactivate_user(session, email=user.email, actor=actor.email, actor_id=actor.user_id, ip=ip)


def reactivate_user(session: Session, actor: ConsoleIdentity, user_id: int, *, ip: str | None = None) -> ConsoleUser:
    """Lets a deactivated user log in again (with their old password, or reset it too)."""
    _require(actor, "manage_users")
    user = _user(session, user_id)
    user.active = True
    record(session, "user.reactivated", by=actor, target=user.email, ip=ip)
    return user


def reset_password(
    session: Session, actor: ConsoleIdentity, user_id: int, *, password: str, ip: str | None = None
) -> ConsoleUser:
    """Sets a new password and logs the user out everywhere (the acting admin's own session survives)."""
    _require(actor, "manage_users")
    user = _user(session, user_id)
    keep = actor.session_id if user.id == actor.user_id else None
    try:
        ended = accounts.change_password(session, user, password, keep_session_id=keep)
    except accounts.WeakPassword:
        raise ActionRefused("weak_password") from None
    record(session, "user.password_reset", by=actor, target=user.email, details={"sessions": ended}, ip=ip)
    return user


def set_desk_phone(
    session: Session, actor: ConsoleIdentity, user_id: int, *, phone: str, ip: str | None = None
) -> ConsoleUser:
    """Stores an operator's (or admin's) desk line, encrypted; officials take no calls."""
    _require(actor, "manage_users")
    user = _user(session, user_id)
    if user.role == "official":
        raise ActionRefused("desk_phone_for_operators")
    if not phone.strip():
        raise ActionRefused("phone_required")
    try:
        e164 = normalize_phone(phone.strip())
    except InvalidPhone:
        raise ActionRefused("bad_phone") from None
    user.desk_phone_ciphertext = encrypt_phone(e164)
    record(session, "user.desk_phone_set", by=actor, target=user.email, details={"phone": mask_phone(e164)}, ip=ip)
    return user


def clear_desk_phone(session: Session, actor: ConsoleIdentity, user_id: int, *, ip: str | None = None) -> ConsoleUser:
    """Forgets a user's desk line."""
    _require(actor, "manage_users")
    user = _user(session, user_id)
    user.desk_phone_ciphertext = None
    record(session, "user.desk_phone_cleared", by=actor, target=user.email, ip=ip)
    return user


# ---- departments --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DepartmentRow:
    """A department with its cases: open ones and all; `in_routing_file` ones are named by routing.yml."""

    code: str
    name_ko: str
    name_en: str
    name_ja: str
    open_cases: int
    all_cases: int
    in_routing_file: bool


def department_choices(session: Session) -> list[tuple[str, str]]:
    """(code, Korean name) of every department, by code: the options of a department select."""
    query = select(Department.code, Department.name_ko).order_by(Department.code)
    return [(code, name) for code, name in session.execute(query)]


def _routing_file_codes() -> frozenset[str]:
    return frozenset(spec.code for spec in routing_file_departments())


def list_departments(session: Session, actor: ConsoleIdentity) -> list[DepartmentRow]:
    """Every department by code, with how many cases it has open and in all."""
    _require(actor, "manage_routing")
    is_open = case((Case.status.not_in([s.value for s in CLOSED]), 1), else_=0)
    counts_query = select(Case.department_id, func.count(), func.sum(is_open)).group_by(Case.department_id)
    counts = {
        department_id: (int(opened or 0), total) for department_id, total, opened in session.execute(counts_query)
    }
    in_file = _routing_file_codes()
    return [
        DepartmentRow(
            code=d.code,
            name_ko=d.name_ko,
            name_en=d.name_en,
            name_ja=d.name_ja,
            open_cases=counts.get(d.id, (0, 0))[0],
            all_cases=counts.get(d.id, (0, 0))[1],
            in_routing_file=d.code in in_file,
        )
        for d in session.execute(select(Department).order_by(Department.code)).scalars()
    ]


def _names(name_ko: str, name_en: str, name_ja: str) -> tuple[str, str, str]:
    names = (name_ko.strip(), name_en.strip(), name_ja.strip())
    if not all(names):
        raise ActionRefused("names_required")
    if any(len(name) > MAX_NAME_CHARS for name in names):
        raise ActionRefused("name_too_long")
    return names


def create_department(
    session: Session,
    actor: ConsoleIdentity,
    *,
    code: str,
    name_ko: str,
    name_en: str,
    name_ja: str,
    ip: str | None = None,
) -> Department:
    """Adds a department (code: 2–64 of a-z, 0-9 and "-") that routes and officials can then point to."""
    _require(actor, "manage_routing")
    code = code.strip()
    if not DEPARTMENT_CODE.fullmatch(code):
        raise ActionRefused("bad_code")
    names = _names(name_ko, name_en, name_ja)
    exists = session.execute(select(Department.id).where(Department.code == code)).first() is not None
    if exists or code in _routing_file_codes():  # a file's code not synced yet would be claimed by filing
        raise ActionRefused("department_exists")
    department = Department(code=code, name_ko=names[0], name_en=names[1], name_ja=names[2])
    session.add(department)
    session.flush()
    details = {"ko": names[0], "en": names[1], "ja": names[2]}
    record(session, "department.created", by=actor, target=code, details=details, ip=ip)
    return department


def rename_department(
    session: Session,
    actor: ConsoleIdentity,
    code: str,
    *,
    name_ko: str,
    name_en: str,
    name_ja: str,
    ip: str | None = None,
) -> Department:
    """Renames a department made in the console; routing.yml's are renamed in the file (see below)."""
    _require(actor, "manage_routing")
    department = _department_by_code(session, code)
    if department is None:
        raise ActionRefused("unknown_department")
    # `python -m civic.migrate` gives the file's departments the file's names at every deploy, so a rename
    # here would silently come undone; refusing it says where the name lives.
    if department.code in _routing_file_codes():
        raise ActionRefused("department_in_routing_file")
    names = _names(name_ko, name_en, name_ja)
    was = {"ko": department.name_ko, "en": department.name_en, "ja": department.name_ja}
    department.name_ko, department.name_en, department.name_ja = names
    details = {"ko": names[0], "en": names[1], "ja": names[2], "was": was}
    record(session, "department.renamed", by=actor, target=department.code, details=details, ip=ip)
    return department


# ---- the routing table --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Where one category × district pair goes: routing.yml's department, or an admin's override of it."""

    category: str
    district: str
    department_code: str
    department_name: str
    file_department_code: str
    overridden: bool


def _route_key(category: str, district: str) -> tuple[str, str]:
    try:
        return check_category(category.strip()), check_district(district.strip())
    except UnknownCategory:
        raise ActionRefused("unknown_category") from None
    except UnknownDistrict:
        raise ActionRefused("unknown_district") from None


def routing_table(session: Session, actor: ConsoleIdentity) -> dict[tuple[str, str], Route]:
    """The department each (category, district) pair is filed to now: the 250 routes of the file and overrides."""
    _require(actor, "manage_routing")
    departments = {d.id: d for d in session.execute(select(Department)).scalars()}
    names = {d.code: d.name_ko for d in departments.values()}
    overrides = {
        (o.category, o.district): departments[o.department_id]
        for o in session.execute(select(RoutingOverride)).scalars()
    }
    routes = {}
    for key, spec in route_table().items():
        chosen = overrides.get(key)
        routes[key] = Route(
            category=key[0],
            district=key[1],
            department_code=chosen.code if chosen else spec.code,
            department_name=chosen.name_ko if chosen else names.get(spec.code, spec.name_ko),
            file_department_code=spec.code,
            overridden=chosen is not None,
        )
    return routes


def set_route(
    session: Session,
    actor: ConsoleIdentity,
    *,
    category: str,
    district: str,
    department_code: str,
    ip: str | None = None,
) -> RoutingOverride | None:
    """Files new cases of `category` in `district` to the department; cases filed before stay where they are.

    Routing a pair back to the file's own department removes the override (returns None), so the pair
    follows routing.yml again if the file changes.
    """
    _require(actor, "manage_routing")
    category, district = _route_key(category, district)
    department = _department_by_code(session, department_code)
    if department is None:
        raise ActionRefused("department_required")
    override = session.get(RoutingOverride, (category, district))
    previous = session.get_one(Department, override.department_id).code if override else None
    if department.code == route_table()[(category, district)].code:
        if override is not None:
            session.delete(override)
        override = None
    elif override is not None:
        override.department_id, override.updated_at = department.id, utcnow()
    else:
        override = RoutingOverride(category=category, district=district, department_id=department.id)
        session.add(override)
    session.flush()
    details = {"department": department.code, "previous_override": previous}
    record(session, "routing.override_set", by=actor, target=f"{category}/{district}", details=details, ip=ip)
    return override


def clear_route(
    session: Session, actor: ConsoleIdentity, *, category: str, district: str, ip: str | None = None
) -> None:
    """Removes an override: new cases of the pair go to routing.yml's department again."""
    _require(actor, "manage_routing")
    category, district = _route_key(category, district)
    override = session.get(RoutingOverride, (category, district))
    if override is None:
        raise ActionRefused("no_override")
    previous = session.get_one(Department, override.department_id).code
    session.delete(override)
    session.flush()
    details = {"previous_override": previous}
    record(session, "routing.override_cleared", by=actor, target=f"{category}/{district}", details=details, ip=ip)


# ---- category deadlines -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    """A category's processing period in working days: categories.yml's and the one in force."""

    category: str
    file_days: int
    override_days: int | None

    @property
    def days(self) -> int:
        return self.override_days if self.override_days is not None else self.file_days

    @property
    def overridden(self) -> bool:
        return self.override_days is not None


def deadlines(session: Session, actor: ConsoleIdentity) -> list[Deadline]:
    """Every category's period, in CATEGORIES order."""
    _require(actor, "manage_routing")
    overrides = {
        category: days for category, days in session.execute(select(CategoryDeadline.category, CategoryDeadline.days))
    }
    file_days = processing_days()
    return [Deadline(c, file_days[c], overrides.get(c)) for c in CATEGORIES]


def _days(value: int | str) -> int:
    try:
        days = int(str(value).strip())
    except ValueError:
        raise ActionRefused("bad_days") from None
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ActionRefused("bad_days")  # under MIN_DAYS the Act counts hours, which due dates do not model
    return days


def _category(category: str) -> str:
    try:
        return check_category(category.strip())
    except UnknownCategory:
        raise ActionRefused("unknown_category") from None


def set_deadline(
    session: Session, actor: ConsoleIdentity, *, category: str, days: int | str, ip: str | None = None
) -> Deadline:
    """Gives new cases of the category `days` working days (6–90); cases filed before keep their due date.

    The file's own period removes the override, so the category follows categories.yml again.
    """
    _require(actor, "manage_routing")
    category, days = _category(category), _days(days)
    override = session.get(CategoryDeadline, category)
    previous = override.days if override else None
    file_days = processing_days()[category]
    if days == file_days:
        if override is not None:
            session.delete(override)
    elif override is not None:
        override.days, override.updated_at = days, utcnow()
    else:
        session.add(CategoryDeadline(category=category, days=days))
    session.flush()
    details = {"days": days, "previous_override": previous}
    record(session, "deadline.set", by=actor, target=category, details=details, ip=ip)
    return Deadline(category, file_days, None if days == file_days else days)


def reset_deadline(session: Session, actor: ConsoleIdentity, *, category: str, ip: str | None = None) -> Deadline:
    """Removes the override: new cases of the category get categories.yml's period again."""
    _require(actor, "manage_routing")
    category = _category(category)
    override = session.get(CategoryDeadline, category)
    if override is None:
        raise ActionRefused("no_override")
    details = {"previous_override": override.days}
    session.delete(override)
    session.flush()
    record(session, "deadline.reset", by=actor, target=category, details=details, ip=ip)
    return Deadline(category, processing_days()[category], None)


# ---- canned answers -----------------------------------------------------------------------------------------------


def canned_answers_for(session: Session, language: str) -> list[CannedAnswer]:
    """The active canned answers in `language`, by title: what an operator may insert into a conversation."""
    query = (
        select(CannedAnswer)
        .where(CannedAnswer.language == language, CannedAnswer.active.is_(True))
        .order_by(CannedAnswer.title, CannedAnswer.id)
    )
    return list(session.execute(query).scalars())


def list_canned_answers(
    session: Session, actor: ConsoleIdentity, *, language: str | None = None, active: bool | None = None
) -> list[CannedAnswer]:
    """Canned answers by language and title, optionally of one language and only (in)active ones."""
    _require(actor, "manage_canned_answers")
    query = select(CannedAnswer).order_by(CannedAnswer.language, CannedAnswer.title, CannedAnswer.id)
    if language is not None:
        query = query.where(CannedAnswer.language == language)
    if active is not None:
        query = query.where(CannedAnswer.active.is_(active))
    return list(session.execute(query).scalars())


def _answer_fields(language: str, title: str, text: str) -> tuple[str, str, str]:
    if language not in LANGUAGES:
        raise ActionRefused("unknown_language")
    title, text = title.strip(), text.strip()
    if not title:
        raise ActionRefused("title_required")
    if len(title) > MAX_NAME_CHARS:
        raise ActionRefused("title_too_long")
    if not text:
        raise ActionRefused("text_required")
    if len(text) > MAX_ANSWER_CHARS:
        raise ActionRefused("text_too_long")
    return language, title, text


def _canned_answer(session: Session, answer_id: int) -> CannedAnswer:
    answer = session.get(CannedAnswer, answer_id)
    if answer is None:
        raise ActionRefused("unknown_answer")
    return answer


def _record_answer(session: Session, actor: ConsoleIdentity, action: str, answer: CannedAnswer, ip: str | None) -> None:
    details = {"language": answer.language, "title": answer.title}
    record(session, action, by=actor, target=f"canned_answer:{answer.id}", details=details, ip=ip)


def create_canned_answer(
    session: Session, actor: ConsoleIdentity, *, language: str, title: str, text: str, ip: str | None = None
) -> CannedAnswer:
    """Adds an active canned answer in one language (ko, en, ja)."""
    _require(actor, "manage_canned_answers")
    language, title, text = _answer_fields(language, title, text)
    answer = CannedAnswer(language=language, title=title, text=text, active=True, updated_at=utcnow())
    session.add(answer)
    session.flush()
    _record_answer(session, actor, "canned_answer.created", answer, ip)
    return answer


def edit_canned_answer(
    session: Session,
    actor: ConsoleIdentity,
    answer_id: int,
    *,
    language: str,
    title: str,
    text: str,
    ip: str | None = None,
) -> CannedAnswer:
    """Changes a canned answer's language, title and text."""
    _require(actor, "manage_canned_answers")
    answer = _canned_answer(session, answer_id)
    answer.language, answer.title, answer.text = _answer_fields(language, title, text)
    answer.updated_at = utcnow()
    _record_answer(session, actor, "canned_answer.edited", answer, ip)
    return answer


def set_canned_answer_active(
    session: Session, actor: ConsoleIdentity, answer_id: int, *, active: bool, ip: str | None = None
) -> CannedAnswer:
    """Withdraws a canned answer from the operators' list (kept for the record), or offers it again."""
    _require(actor, "manage_canned_answers")
    answer = _canned_answer(session, answer_id)
    answer.active, answer.updated_at = active, utcnow()
    _record_answer(session, actor, "canned_answer.reactivated" if active else "canned_answer.deactivated", answer, ip)
    return answer


# ---- the admin home -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdminSummary:
    """The counts the admin home shows next to each screen."""

    active_users: int
    users: int
    departments: int
    route_overrides: int
    deadline_overrides: int
    active_canned_answers: int


def admin_summary(session: Session, actor: ConsoleIdentity) -> AdminSummary:
    """How many users, departments, overrides and canned answers there are."""
    _require(actor, "manage_users")

    def count(model: type[Base], *where: ColumnElement[bool]) -> int:
        return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()

    return AdminSummary(
        active_users=count(ConsoleUser, ConsoleUser.active.is_(True)),
        users=count(ConsoleUser),
        departments=count(Department),
        route_overrides=count(RoutingOverride),
        deadline_overrides=count(CategoryDeadline),
        active_canned_answers=count(CannedAnswer, CannedAnswer.active.is_(True)),
    )
