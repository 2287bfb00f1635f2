"""Open311 API keys from the shell: `python -m operator_console.api_keys create --name NAME | list | revoke --id N`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from civic import api_keys
from civic.console_cases import ActionRefused
from civic.db import get_session_factory, session_scope
from civic.models import ApiKey


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m operator_console.api_keys", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="make a key and print it once (only its hash is stored)")
    create.add_argument("--name", required=True, help="who uses the key, e.g. 'FixMyStreet Seoul'")
    create.add_argument("--rate", type=int, help="writes per minute (default: OPEN311_KEY_RATE_PER_MINUTE)")
    commands.add_parser("list", help="list keys (no secrets: none are stored)")
    revoke = commands.add_parser("revoke", help="stop a key at once")
    revoke.add_argument("--id", type=int, required=True, dest="key_id")
    return parser


def _describe(key: ApiKey) -> str:
    last = f"last used {key.last_used_at:%Y-%m-%d %H:%M} UTC" if key.last_used_at else "never used"
    state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M} UTC" if key.revoked_at else "active"
    return f"{key.id}\t{key.name}\t{key.prefix}…\t{key.rate_limit_per_minute}/min\t{state}\t{last}"


def main(argv: Sequence[str] | None = None, *, session_factory: sessionmaker[Session] | None = None) -> int:
    """Runs one command; 0 on success, 1 with a message on stderr otherwise."""
    args = _parser().parse_args(argv)
    factory = session_factory or get_session_factory()
    try:
        with session_scope(factory) as session:
            if args.command == "create":
                new = api_keys.create_key(session, name=args.name, rate_limit_per_minute=args.rate)
                print(f"created key {new.key.id} for {new.key.name}; shown this once, store it now:")
                print(new.secret)
            elif args.command == "list":
                keys = api_keys.list_keys(session)
                print("\n".join(_describe(key) for key in keys) if keys else "no API keys")
            else:
                key = api_keys.revoke_key(session, key_id=args.key_id)
                print(f"revoked key {key.id} ({key.name})")
    except ActionRefused as refused:
        print(f"error: {refused.code}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
