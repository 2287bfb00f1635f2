"""Console users from the shell: `python -m operator_console.users create|list|deactivate` (the first admin too)."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from civic import console_accounts as accounts
from civic.console_accounts import ROLES, ConsoleAccountError
from civic.db import get_session_factory, session_scope
from civic.models import ConsoleUser


class PasswordMismatch(Exception):
    """The two passwords typed at the terminal differ."""


def read_password() -> str:
    """At a terminal: asked twice without echo; otherwise one line from stdin (for scripts and `make admin` pipes)."""
    if sys.stdin.isatty():
        first = getpass.getpass("Password (12+ characters): ")
        if getpass.getpass("Again: ") != first:
            raise PasswordMismatch("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m operator_console.users", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="add a user; the password is read from stdin")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--email", required=True)
    create.add_argument("--department", metavar="CODE", help="the department's code (required for officials)")
    commands.add_parser("list", help="list users (no secrets)")
    deactivate = commands.add_parser("deactivate", help="stop a user from logging in and end their sessions")
    deactivate.add_argument("--email", required=True)
    return parser


def _create(factory: sessionmaker[Session], args: argparse.Namespace) -> str:
    password = read_password()
    with session_scope(factory) as session:
        user = accounts.create_user(
            session, email=args.email, password=password, role=args.role, department_code=args.department
        )
        return f"created {user.role} {user.email}"


def _describe(user: ConsoleUser) -> str:
    department = user.department.code if user.department else "-"
    state = "active" if user.active else "inactive"
    last_login = f"last login {user.last_login_at:%Y-%m-%d %H:%M} UTC" if user.last_login_at else "never logged in"
    return f"{user.email}\t{user.role}\t{department}\t{state}\t{last_login}"


def _list(factory: sessionmaker[Session]) -> str:
    with session_scope(factory) as session:
        lines = [_describe(user) for user in accounts.list_users(session)]
    return "\n".join(lines) if lines else "no console users"


def _deactivate(factory: sessionmaker[Session], args: argparse.Namespace) -> str:
    with session_scope(factory) as session:
        user = accounts.deactivate_user(session, email=args.email)
        return f"deactivated {user.email}"


def main(argv: Sequence[str] | None = None, *, session_factory: sessionmaker[Session] | None = None) -> int:
    """Runs one command; 0 on success, 1 with a message on stderr otherwise."""
    args = _parser().parse_args(argv)
    factory = session_factory or get_session_factory()
    try:
        if args.command == "create":
            print(_create(factory, args))
        elif args.command == "list":
            print(_list(factory))
        else:
            print(_deactivate(factory, args))
    except (ConsoleAccountError, PasswordMismatch) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
