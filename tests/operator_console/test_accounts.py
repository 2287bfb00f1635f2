"""Console accounts in the domain: Argon2id, throttling, session rotation and expiry, CSRF, roles, audit, the CLI."""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timedelta
from typing import Literal

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from civic import console_accounts as accounts
from civic.console_accounts import (
    AccountExists,
    AuditLogIsAppendOnly,
    ConsoleAccountError,
    ConsoleIdentity,
    WeakPassword,
    can,
)
from civic.db import utcnow
from civic.models import AuditEntry, ConsoleSession, ConsoleUser, Department, LoginAttempt
from operator_console import sessions
from operator_console import users as users_cli

PASSWORD = "correct horse battery"
# Cheap parameters where the test is about logic, not hashing cost; verification reads them from the hash.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=utcnow().tzinfo)


def new_email() -> str:
    return f"op-{uuid.uuid4().hex[:10]}@seoul.example.kr"


def a_department(session: Session, skip: int = 0) -> Department:
    return session.execute(select(Department).order_by(Department.id).offset(skip).limit(1)).scalar_one()


def make_user(session: Session, role: str = "operator", department: Department | None = None) -> ConsoleUser:
    code = department.code if department else None
    return accounts.create_user(
        session, email=new_email(), password=PASSWORD, role=role, department_code=code, hasher=FAST
    )


def log_in(session: Session, email: str, password: str = PASSWORD, **kwargs: object) -> sessions.LoginOutcome:
    kwargs = {"ip": "10.0.0.1", "now": T0, "hasher": FAST} | kwargs
    return sessions.log_in(session, email=email, password=password, **kwargs)  # type: ignore[arg-type]


def audit_actions(session: Session, actor: str) -> list[str]:
    query = select(AuditEntry.action).where(AuditEntry.actor == actor).order_by(AuditEntry.id)
    return list(session.execute(query).scalars())


# ---- users and passwords ------------------------------------------------------------------------------------------


def test_password_is_hashed_with_argon2id_and_email_lower_cased(session: Session) -> None:
    email = new_email()
    user = accounts.create_user(session, email=f"  {email.upper()} ", password=PASSWORD, role="admin")
    assert user.email == email
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert audit_actions(session, "cli")[-1:] == ["user.created"]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"password": "short pass1"}, WeakPassword),  # 11 characters
        ({"role": "official"}, ConsoleAccountError),  # an official without a department
        ({"role": "superuser"}, ConsoleAccountError),
        ({"email": "not-an-address"}, ConsoleAccountError),
        ({"department_code": "no-such-department"}, ConsoleAccountError),
    ],
)
def test_bad_accounts_are_refused(session: Session, fields: dict[str, str], error: type[Exception]) -> None:
    values = {"email": new_email(), "password": PASSWORD, "role": "operator"} | fields
    with pytest.raises(error):
        accounts.create_user(
            session,
            email=values["email"],
            password=values["password"],
            role=values["role"],
            department_code=values.get("department_code"),
            hasher=FAST,
        )


def test_an_email_is_taken_once_whatever_its_case(session: Session) -> None:
    user = make_user(session)
    with pytest.raises(AccountExists):
        accounts.create_user(session, email=user.email.upper(), password=PASSWORD, role="operator", hasher=FAST)


def test_wrong_password_and_unknown_email_are_refused_and_audited(session: Session) -> None:
    user = make_user(session)
    assert not log_in(session, user.email, "wrong password!!").ok
    unknown = new_email()
    assert not log_in(session, unknown).ok
    reasons = session.execute(
        select(AuditEntry.details).where(
            AuditEntry.action == "login.failed", AuditEntry.actor.in_([user.email, unknown])
        )
    ).scalars()
    assert sorted(details["reason"] for details in reasons) == ["unknown_email", "wrong_password"]
    outcome = log_in(session, user.email.upper())
    assert outcome.ok and outcome.identity and outcome.identity.email == user.email
    assert user.last_login_at == T0
    entry = session.execute(
        select(AuditEntry).where(AuditEntry.action == "login", AuditEntry.actor == user.email)
    ).scalar_one()
    assert entry.ip == "10.0.0.1" and entry.user_id == user.id


def test_an_inactive_user_cannot_log_in_and_loses_open_sessions(session: Session) -> None:
    user = make_user(session)
    token = log_in(session, user.email).token
    accounts.deactivate_user(session, email=user.email)
    assert sessions.resolve_session(session, token, now=T0) is None
    assert not log_in(session, user.email).ok


def test_hash_is_renewed_when_argon2_parameters_changed(session: Session) -> None:
    user = make_user(session)  # made with FAST, weaker than the defaults
    old_hash = user.password_hash
    assert log_in(session, user.email, hasher=PasswordHasher()).ok
    assert user.password_hash != old_hash and user.password_hash.startswith("$argon2id$")
    assert not PasswordHasher().check_needs_rehash(user.password_hash)
    assert log_in(session, user.email, now=T0 + timedelta(seconds=1)).ok  # the new hash still verifies


# ---- throttling ---------------------------------------------------------------------------------------------------


class NoVerifyHasher(PasswordHasher):
    """Fails the test if a password is checked: throttled attempts must not reach the hash."""

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        raise AssertionError("a throttled login checked the password")


def hammer(session: Session, email: str, ip: str, start: datetime, seconds: int) -> tuple[int, int]:
    """A guesser trying a wrong password once a second; returns (tries that were checked, tries refused)."""
    checked = refused = 0
    for second in range(seconds):
        outcome = log_in(session, email, "wrong password!!", ip=ip, now=start + timedelta(seconds=second))
        assert not outcome.ok
        refused += outcome.throttled
        checked += not outcome.throttled
    return checked, refused


def test_failures_back_off_exponentially_without_checking_the_password(session: Session) -> None:
    user = make_user(session)
    free = accounts.FREE_FAILURES_PER_EMAIL_AND_ADDRESS
    for second in range(free):
        assert not log_in(session, user.email, "wrong password!!", now=T0 + timedelta(seconds=second)).ok
    last = T0 + timedelta(seconds=free - 1)
    outcome = log_in(session, user.email, now=last, hasher=NoVerifyHasher())
    assert outcome.throttled and not outcome.ok and outcome.retry_after == 1
    assert "login.throttled" in audit_actions(session, user.email)
    # Each further failure doubles the wait: 1 s, 2 s, 4 s, 8 s … and never more than the cap.
    for doubling in range(10):  # the last one reaches the cap; all within the hour the failures count for
        last += timedelta(seconds=2**doubling)
        assert not log_in(session, user.email, "wrong password!!", now=last).throttled
        wait = accounts.throttle_wait(session, email=user.email, ip="10.0.0.1", now=last)
        assert wait == min(2 ** (doubling + 1), accounts.MAX_WAIT_PER_EMAIL_AND_ADDRESS)
    # Throttled tries are not counted: once the wait is over the right password works.
    assert log_in(session, user.email, now=last + timedelta(seconds=wait)).ok


def test_a_success_ends_the_run_of_failures(session: Session) -> None:
    user = make_user(session)
    moment = T0
    for _ in range(accounts.FREE_FAILURES_PER_EMAIL_AND_ADDRESS):
        moment += timedelta(seconds=1)
        assert not log_in(session, user.email, "wrong password!!", now=moment).ok
    moment += timedelta(seconds=1)
    assert log_in(session, user.email, now=moment).ok  # 3 failures: a second later still allowed
    for _ in range(accounts.FREE_FAILURES_PER_EMAIL_AND_ADDRESS - 1):
        moment += timedelta(seconds=1)
        assert not log_in(session, user.email, "wrong password!!", now=moment).ok
    assert accounts.throttle_wait(session, email=user.email, ip="10.0.0.1", now=moment) == 0  # the count restarted
    assert not log_in(session, user.email, "wrong password!!", now=moment).ok
    assert log_in(session, user.email, now=moment).throttled


def test_the_right_password_from_the_operators_address_works_while_another_address_hammers(session: Session) -> None:
    user = make_user(session)
    assert log_in(session, user.email, ip="10.0.0.1", now=T0 - timedelta(days=3)).ok  # the operator's usual address
    checked, refused = hammer(session, user.email, "10.6.6.6", T0, seconds=600)
    # Ten minutes of one try a second from one address: most were refused without a look at the password.
    assert refused > 500 and checked < 20
    assert log_in(session, user.email, ip="10.0.0.1", now=T0 + timedelta(seconds=600)).ok


def test_guessers_on_many_addresses_slow_a_new_address_by_at_most_a_minute(session: Session) -> None:
    user = make_user(session)
    for n in range(20):  # twenty addresses, each using its free tries and then hammering
        hammer(session, user.email, f"10.6.6.{n}", T0 + timedelta(seconds=10 * n), seconds=10)
    moment = T0 + timedelta(seconds=200)
    wait = accounts.throttle_wait(session, email=user.email, ip="10.7.7.7", now=moment)
    assert 0 < wait <= accounts.MAX_WAIT_PER_EMAIL  # the per-email back-off: mild, never a lock
    assert log_in(session, user.email, ip="10.7.7.7", now=moment, hasher=NoVerifyHasher()).throttled
    assert log_in(session, user.email, ip="10.7.7.7", now=moment + timedelta(seconds=wait)).ok


def test_an_address_spraying_many_emails_backs_off_for_every_email(session: Session) -> None:
    user = make_user(session)
    for second in range(accounts.FREE_FAILURES_PER_ADDRESS):
        assert not log_in(session, new_email(), ip="10.9.9.9", now=T0 + timedelta(seconds=second)).ok
    moment = T0 + timedelta(seconds=accounts.FREE_FAILURES_PER_ADDRESS - 1)
    assert log_in(session, user.email, ip="10.9.9.9", now=moment).throttled
    assert log_in(session, user.email, ip="10.9.9.10", now=moment).ok
    failures = session.execute(select(LoginAttempt).where(LoginAttempt.ip == "10.9.9.9")).scalars().all()
    assert len(failures) == accounts.FREE_FAILURES_PER_ADDRESS and not any(attempt.succeeded for attempt in failures)


# ---- sessions -----------------------------------------------------------------------------------------------------


def test_login_opens_a_new_session_and_ends_the_previous_one(session: Session) -> None:
    user = make_user(session)
    first = log_in(session, user.email)
    assert first.token and sessions.resolve_session(session, first.token, now=T0) is not None
    # The token itself is never stored: the row's id is its SHA-256.
    assert session.get(ConsoleSession, first.token) is None
    assert session.get(ConsoleSession, sessions.session_id_of(first.token)) is not None
    second = log_in(session, user.email, previous_token=first.token, now=T0 + timedelta(seconds=5))
    assert second.token and second.token != first.token
    assert sessions.resolve_session(session, first.token, now=T0 + timedelta(seconds=6)) is None
    assert sessions.resolve_session(session, second.token, now=T0 + timedelta(seconds=6)) is not None


def test_idle_sessions_expire_and_activity_keeps_them(session: Session) -> None:
    user = make_user(session)
    token = log_in(session, user.email).token
    seen = T0 + timedelta(minutes=29)
    assert sessions.resolve_session(session, token, now=seen) is not None
    assert sessions.resolve_session(session, token, now=seen + timedelta(minutes=29)) is not None
    assert sessions.resolve_session(session, token, now=seen + timedelta(minutes=29 + 31)) is None
    assert session.get(ConsoleSession, sessions.session_id_of(token or "")) is None  # expired sessions are deleted


def test_sessions_end_after_the_absolute_limit_however_active(session: Session) -> None:
    user = make_user(session)
    token = log_in(session, user.email).token
    moment = T0
    while moment < T0 + timedelta(hours=12) - timedelta(minutes=20):
        moment += timedelta(minutes=20)
        assert sessions.resolve_session(session, token, now=moment) is not None
    assert sessions.resolve_session(session, token, now=T0 + timedelta(hours=12, seconds=1)) is None


def test_logout_deletes_the_session(session: Session) -> None:
    user = make_user(session)
    token = log_in(session, user.email).token
    assert sessions.log_out(session, token, ip="10.0.0.1", now=T0)
    assert sessions.resolve_session(session, token, now=T0) is None
    assert not sessions.log_out(session, token)
    assert audit_actions(session, user.email)[-1] == "logout"


def test_csrf_tokens_belong_to_one_session(session: Session) -> None:
    user = make_user(session)
    first = log_in(session, user.email).identity
    second = log_in(session, user.email, now=T0 + timedelta(seconds=1)).identity
    assert first and second and first.csrf_token != second.csrf_token
    assert sessions.csrf_ok(first, first.csrf_token)
    assert not sessions.csrf_ok(first, second.csrf_token)
    assert not sessions.csrf_ok(first, "")
    assert not sessions.csrf_ok(first, None)


# ---- roles and audit ----------------------------------------------------------------------------------------------


def identity(role: str, department_id: int | None = None) -> ConsoleIdentity:
    return ConsoleIdentity(1, "x@seoul.example.kr", role, department_id, None, "s")


def test_who_may_do_what() -> None:
    operator, admin = identity("operator"), identity("admin")
    official = identity("official", department_id=7)
    assert can(operator, "accept_case") and not can(operator, "resolve_case")
    assert can(official, "resolve_case", department_id=7)
    assert not can(official, "resolve_case", department_id=8)
    assert not can(official, "resolve_case")  # no department given: refused, not guessed
    assert not can(official, "accept_case", department_id=7)
    assert can(official, "list_cases")
    assert not can(operator, "read_audit") and not can(official, "manage_users")
    assert all(can(admin, action, department_id=1) for action in accounts.ACTION_ROLES)
    with pytest.raises(ValueError):
        can(admin, "resolve_cases")


def test_role_check_works_on_a_stored_user(session: Session) -> None:
    department = a_department(session)
    official = make_user(session, role="official", department=department)
    assert can(official, "start_case", department_id=department.id)
    assert not can(official, "start_case", department_id=a_department(session, skip=1).id)


def test_audit_entries_cannot_be_changed_or_deleted(session: Session) -> None:
    entry = accounts.record(session, "test.action", actor="cli", target="x", details={"a": 1}, ip="10.0.0.1")
    session.flush()
    entry.action = "something.else"
    with pytest.raises(AuditLogIsAppendOnly):
        session.flush()
    session.rollback()


def test_audit_entries_cannot_be_deleted(session: Session) -> None:
    entry = accounts.record(session, "test.action", actor="cli")
    session.flush()
    session.delete(entry)
    with pytest.raises(AuditLogIsAppendOnly):
        session.flush()
    session.rollback()


# ---- the CLI ------------------------------------------------------------------------------------------------------


def test_cli_creates_lists_and_deactivates(
    bound_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    email = new_email()
    with bound_factory() as session:
        department = a_department(session)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert users_cli.main(["create", "--role", "admin", "--email", email], session_factory=bound_factory) == 0
    official = new_email()
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    argv = ["create", "--role", "official", "--email", official, "--department", department.code]
    assert users_cli.main(argv, session_factory=bound_factory) == 0
    assert users_cli.main(["list"], session_factory=bound_factory) == 0
    out = capsys.readouterr().out
    assert f"created admin {email}" in out
    assert f"{official}\tofficial\t{department.code}\tactive\tnever logged in" in out
    assert PASSWORD not in out and "$argon2" not in out
    with bound_factory() as session:
        stored = session.execute(select(ConsoleUser).where(ConsoleUser.email == email)).scalar_one()
        assert stored.password_hash.startswith("$argon2id$")
    assert users_cli.main(["deactivate", "--email", email], session_factory=bound_factory) == 0
    assert users_cli.main(["list"], session_factory=bound_factory) == 0
    assert f"{email}\tadmin\t-\tinactive" in capsys.readouterr().out


def test_cli_refuses_a_short_password_without_echoing_it(
    bound_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("tooshort\n"))
    assert users_cli.main(["create", "--role", "operator", "--email", new_email()], session_factory=bound_factory) == 1
    captured = capsys.readouterr()
    assert "at least 12 characters" in captured.err and "tooshort" not in captured.out + captured.err


def test_cli_asks_twice_at_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    with pytest.raises(users_cli.PasswordMismatch):
        users_cli.read_password()
