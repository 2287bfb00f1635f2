"""Console accounts: users, Argon2id passwords, login checks with back-off, roles, and the append-only audit log."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Delete, delete, event, func, select
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.orm import Mapper, Session

from civic.db import utcnow
from civic.errors import CivicError
from civic.models import AuditEntry, ConsoleSession, ConsoleUser, Department, LoginAttempt

ROLES = ("operator", "official", "admin")
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024  # Argon2 takes any length; the bound keeps one request from hashing megabytes
MAX_EMAIL_CHARS = 254
# Login back-off, never a lock: after a scope's free failures, each further failure doubles the wait before the
# next try in that scope (1 s, 2 s, 4 s …) up to its cap; failures older than the window stop counting.
THROTTLE_WINDOW = timedelta(hours=1)
# One email from one address (the guesser's own pace): 3 free, capped at 15 minutes.
FREE_FAILURES_PER_EMAIL_AND_ADDRESS = 3
MAX_WAIT_PER_EMAIL_AND_ADDRESS = 900
# One address, any email (spraying): 10 free, since several operators may share one office address; 15 minutes.
FREE_FAILURES_PER_ADDRESS = 10
MAX_WAIT_PER_ADDRESS = 900
# One email from addresses it never logged in from (a guesser spread over many): 10 free, capped at one minute:
# mild, and never applied to an address the account logged in from lately, so its operator is not locked out.
FREE_FAILURES_PER_EMAIL = 10
MAX_WAIT_PER_EMAIL = 60
KNOWN_ADDRESS_DAYS = 90

_hasher = PasswordHasher()  # Argon2id, the library's RFC 9106 defaults


class ConsoleAccountError(CivicError, ValueError):
    """A console account that cannot be created or changed; the message says why."""


class WeakPassword(ConsoleAccountError):
    """The password is shorter than MIN_PASSWORD_CHARS (or absurdly long)."""


class AccountExists(ConsoleAccountError):
    """A console user with that email exists already."""


class UnknownAccount(ConsoleAccountError):
    """No console user has that email."""


class AuditLogIsAppendOnly(CivicError):
    """Something tried to update or delete an audit entry."""


@dataclass(frozen=True)
class ConsoleIdentity:
    """Who acts in the console: a snapshot of the user and their session's id, safe to use after the transaction."""

    user_id: int
    email: str
    role: str
    department_id: int | None
    department_code: str | None
    session_id: str


@dataclass(frozen=True)
class Authentication:
    """A password check: the user when it passed, else nothing, or the seconds to wait when throttled."""

    user: ConsoleUser | None = None
    retry_after: int = 0


# ---- users --------------------------------------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    """The stored form of an email: trimmed and lower-cased; refuses what cannot be an address."""
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or not domain or len(email) > MAX_EMAIL_CHARS or any(ch.isspace() for ch in email):
        raise ConsoleAccountError(f"not an email address: {email!r}")
    return email


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_CHARS:
        raise WeakPassword(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise WeakPassword(f"the password must have at most {MAX_PASSWORD_CHARS} characters")


def find_user(session: Session, email: str) -> ConsoleUser | None:
    # Not normalize_email: a login form may send anything, and a lookup must not raise on it.
    key = email.strip().lower()[:MAX_EMAIL_CHARS]
    return session.execute(select(ConsoleUser).where(ConsoleUser.email == key)).scalar_one_or_none()


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    role: str,
    department_code: str | None = None,
    actor: str = "cli",
    actor_id: int | None = None,
    ip: str | None = None,
    hasher: PasswordHasher | None = None,
) -> ConsoleUser:
    """Adds a console user with an Argon2id hash of `password`; officials need their department."""
    email = normalize_email(email)
    if role not in ROLES:
        raise ConsoleAccountError(f"role must be one of {', '.join(ROLES)}")
    check_password_strength(password)
    department = None
    if department_code:
        department = session.execute(select(Department).where(Department.code == department_code)).scalar_one_or_none()
        if department is None:
            raise ConsoleAccountError(f"no department with code {department_code!r}")
    if role == "official" and department is None:
        raise ConsoleAccountError("an official needs a department (--department CODE)")
    if find_user(session, email) is not None:
        raise AccountExists(f"a console user {email} exists already")
    user = ConsoleUser(
        email=email,
        password_hash=(hasher or _hasher).hash(password),
        role=role,
        department_id=department.id if department else None,
        active=True,
        created_at=utcnow(),
    )
    session.add(user)
    session.flush()
    details = {"role": role, "department": department_code}
    record(session, "user.created", actor=actor, user_id=actor_id, target=email, details=details, ip=ip)
    return user


def deactivate_user(
    session: Session, *, email: str, actor: str = "cli", actor_id: int | None = None, ip: str | None = None
) -> ConsoleUser:
    """Stops a user from logging in and ends their open sessions; the row stays for the audit log."""
    user = find_user(session, email)
    if user is None:
        raise UnknownAccount(f"no console user {email.strip().lower()}")
    user.active = False
    ended = delete_rows(session, delete(ConsoleSession).where(ConsoleSession.user_id == user.id))
    record(
        session,
        "user.deactivated",
        actor=actor,
        user_id=actor_id,
        target=user.email,
        details={"sessions": ended},
        ip=ip,
    )
    return user


def change_password(
    session: Session,
    user: ConsoleUser,
    password: str,
    *,
    keep_session_id: str | None = None,
    hasher: PasswordHasher | None = None,
) -> int:
    """Gives `user` a new password and ends their other sessions (a reset often means the old one leaked).

    Returns how many sessions ended; `keep_session_id` spares the session of someone resetting their own.
    """
    check_password_strength(password)
    user.password_hash = (hasher or _hasher).hash(password)
    others = delete(ConsoleSession).where(ConsoleSession.user_id == user.id)
    if keep_session_id is not None:
        others = others.where(ConsoleSession.id != keep_session_id)
    return delete_rows(session, others)


def delete_rows(session: Session, statement: Delete) -> int:
    # A DELETE returns a cursor result; its row count is how many rows went.
    return cast(CursorResult[Any], session.execute(statement)).rowcount


def list_users(session: Session) -> list[ConsoleUser]:
    return list(session.execute(select(ConsoleUser).order_by(ConsoleUser.email)).scalars())


# ---- passwords ----------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Verified against when the email is unknown, so that answer takes as long as a wrong password.
    return _hasher.hash(secrets.token_hex(16))


def _password_matches(hasher: PasswordHasher, stored: str, given: str) -> bool:
    try:
        return hasher.verify(stored, given)
    except (VerificationError, InvalidHashError):
        return False


# ---- throttling ---------------------------------------------------------------------------------------------------


def backoff_seconds(failures: int, free: int, cap: int) -> int:
    """The wait after `failures` failures: none for the first `free`, then 1 s doubling, at most `cap`."""
    if failures < free:
        return 0
    return min(cap, 2 ** min(failures - free, 30))


def _wait(session: Session, where: Any, free: int, cap: int, now: datetime) -> int:
    # Measured from the newest counted failure: throttled tries are not failures, so hammering does not extend it.
    count, newest = session.execute(select(func.count(), func.max(LoginAttempt.at)).where(where)).one()
    if newest is None:
        return 0
    delay = backoff_seconds(count, free, cap)
    return max(0, math.ceil((newest + timedelta(seconds=delay) - now).total_seconds()))


def _last_success(session: Session, where: Any, since: datetime) -> datetime | None:
    query = select(func.max(LoginAttempt.at)).where(where, LoginAttempt.succeeded.is_(True), LoginAttempt.at > since)
    return session.execute(query).scalar_one_or_none()


def throttle_wait(session: Session, *, email: str, ip: str, now: datetime | None = None) -> int:
    """Seconds before this email may try a password again from this client address (0: now).

    Three back-offs, the longest wins: this email from this address, this address for any email, and this
    email from anywhere (only for an address the account has not logged in from in 90 days). A success ends
    the email's runs of failures; per address it does not, or one known account would let a guesser reset
    the address's count at will.
    """
    now = now or utcnow()
    since = now - THROTTLE_WINDOW
    failed = LoginAttempt.succeeded.is_(False)
    email_success = _last_success(session, LoginAttempt.email == email, since)
    email_since = max(since, email_success) if email_success else since
    by_pair = (LoginAttempt.email == email) & (LoginAttempt.ip == ip) & failed & (LoginAttempt.at > email_since)
    by_ip = (LoginAttempt.ip == ip) & failed & (LoginAttempt.at > since)
    waits = [
        _wait(session, by_pair, FREE_FAILURES_PER_EMAIL_AND_ADDRESS, MAX_WAIT_PER_EMAIL_AND_ADDRESS, now),
        _wait(session, by_ip, FREE_FAILURES_PER_ADDRESS, MAX_WAIT_PER_ADDRESS, now),
    ]
    known = _last_success(
        session, (LoginAttempt.email == email) & (LoginAttempt.ip == ip), now - timedelta(days=KNOWN_ADDRESS_DAYS)
    )
    if known is None:
        by_email = (LoginAttempt.email == email) & failed & (LoginAttempt.at > email_since)
        waits.append(_wait(session, by_email, FREE_FAILURES_PER_EMAIL, MAX_WAIT_PER_EMAIL, now))
    return max(waits)


# ---- login -------------------------------------------------------------------------------------------------------


def authenticate(
    session: Session,
    *,
    email: str,
    password: str,
    ip: str,
    address_key: str | None = None,
    now: datetime | None = None,
    hasher: PasswordHasher | None = None,
) -> Authentication:
    """Checks a password (unless throttled); every attempt is counted, and every refusal audited.

    `ip` is the client's address for the audit log; `address_key` what the back-off counts by (an IPv6
    client's /64; default `ip`). Opening the session is the console's part (operator_console.sessions).
    """
    now = now or utcnow()
    hasher = hasher or _hasher
    key = email.strip().lower()[:MAX_EMAIL_CHARS]
    ip = ip[:45]
    counted_as = (address_key or ip)[:45]
    wait = throttle_wait(session, email=key, ip=counted_as, now=now)
    if wait:
        record(session, "login.throttled", actor=key or "anonymous", details={"retry_after": wait}, ip=ip, now=now)
        return Authentication(retry_after=wait)
    user = find_user(session, key)
    # Too long to be anyone's password (create_user refuses those): not hashed, so it cannot tie up a worker.
    matches = len(password) <= MAX_PASSWORD_CHARS and _password_matches(
        hasher, user.password_hash if user else _dummy_hash(), password
    )
    if user is None or not matches or not user.active:
        reason = "unknown_email" if user is None else "wrong_password" if not matches else "inactive"
        session.add(LoginAttempt(email=key, ip=counted_as, at=now, succeeded=False))
        record(
            session,
            "login.failed",
            actor=key or "anonymous",
            user_id=user.id if user else None,
            details={"reason": reason},
            ip=ip,
            now=now,
        )
        return Authentication()
    session.add(LoginAttempt(email=key, ip=counted_as, at=now, succeeded=True))
    if hasher.check_needs_rehash(user.password_hash):  # Argon2 parameters were raised since this hash was made
        user.password_hash = hasher.hash(password)
    user.last_login_at = now
    return Authentication(user=user)


# ---- roles --------------------------------------------------------------------------------------------------------

EVERYONE = frozenset(ROLES)
OPERATORS = frozenset({"operator", "admin"})
OFFICIALS = frozenset({"official", "admin"})
ADMINS = frozenset({"admin"})

# Who may do what. Kept as one explicit table so a review sees every permission at once.
ACTION_ROLES: dict[str, frozenset[str]] = {
    "list_cases": EVERYONE,  # officials' lists are filtered to their department by the query
    "view_case": EVERYONE,
    # A reporter's contact (personal data: an Open311 client's name, email, phone), each view audited.
    "view_contact": OPERATORS | OFFICIALS,
    "view_dashboard": EVERYONE,
    "export_cases": EVERYONE,
    # The 120 operators receive, check and route what citizens send.
    "accept_case": OPERATORS,
    "route_case": OPERATORS,
    "assign_case": OPERATORS,  # hand an accepted case to its department
    "merge_case": OPERATORS,
    "file_case": OPERATORS,
    "take_conversation": OPERATORS,
    "manage_outbox": OPERATORS,  # see what could not be delivered to citizens, and send it again
    # Officials work their department's cases.
    "start_case": OFFICIALS,
    "resolve_case": OFFICIALS,
    "reject_case": OFFICIALS,
    "return_case": OFFICIALS,
    # Admins run the console itself.
    "manage_users": ADMINS,
    "manage_routing": ADMINS,
    "manage_canned_answers": ADMINS,
    "manage_api_keys": ADMINS,  # Open311 clients' keys (civic.api_keys)
    "read_audit": ADMINS,
}
# Actions on one case: an official may do them only on a case of their own department.
CASE_ACTIONS = frozenset(
    {
        "view_case",
        "view_contact",
        "accept_case",
        "route_case",
        "assign_case",
        "merge_case",
        "start_case",
        "resolve_case",
        "reject_case",
        "return_case",
    }
)


def can(user: ConsoleIdentity | ConsoleUser, action: str, *, department_id: int | None = None) -> bool:
    """Whether `user` may do `action` (on a case of `department_id` for the actions on one case)."""
    roles = ACTION_ROLES.get(action)
    if roles is None:
        raise ValueError(f"unknown console action {action!r}")  # a typo must fail loudly, not deny or allow
    if user.role not in roles:
        return False
    if user.role == "official" and action in CASE_ACTIONS:
        return department_id is not None and department_id == user.department_id
    return True


# ---- audit log ----------------------------------------------------------------------------------------------------


def record(
    session: Session,
    action: str,
    *,
    by: ConsoleIdentity | None = None,
    actor: str | None = None,
    user_id: int | None = None,
    target: str = "",
    details: dict[str, Any] | None = None,
    ip: str | None = None,
    now: datetime | None = None,
) -> AuditEntry:
    """Appends one audit entry: `by` (a console user) or `actor` (e.g. "cli", "anonymous") did `action` on `target`."""
    entry = AuditEntry(
        at=now or utcnow(),
        user_id=by.user_id if by else user_id,
        actor=(by.email if by else actor or "anonymous")[:MAX_EMAIL_CHARS],
        action=action[:64],
        target=target[:128],
        details=details or {},
        ip=ip[:45] if ip else None,
    )
    session.add(entry)
    return entry


def _refuse_audit_change(mapper: Mapper[Any], connection: Connection, target: AuditEntry) -> None:
    raise AuditLogIsAppendOnly(f"audit entry {target.id} cannot be changed or deleted")


# The ORM refuses to change history; a database role without UPDATE/DELETE on the table is the stronger guard.
event.listen(AuditEntry, "before_update", _refuse_audit_change)
event.listen(AuditEntry, "before_delete", _refuse_audit_change)
