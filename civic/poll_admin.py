"""City staff's poll commands until the console has them: create, list, approve or reject, close.

.venv/bin/python -m civic.poll_admin create --title "…" --option 찬성 --option 반대 --days 7 [--interim]
    [--visibility public|roll|password|qr|gps] [--roll phones.csv] [--gps 37.5663,126.9779,500]
    [--password-stdin] [--qr-png poll.png]
.venv/bin/python -m civic.poll_admin list | approve ID | reject ID | close ID
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta
from pathlib import Path

import segno

from civic import polls, votes
from civic.db import get_session_factory, session_scope, utcnow
from civic.models import Poll
from civic.polls import NewPoll, PollError
from civic.settings import get_settings


def poll_url(public_id: str, qr_token: str | None = None) -> str:
    url = f"{get_settings().public_base_url.rstrip('/')}/polls/{public_id}"
    return f"{url}?t={qr_token}" if qr_token else url


def create(args: argparse.Namespace) -> int:
    opens = datetime.fromisoformat(args.opens) if args.opens else utcnow()
    gps_center, gps_radius = None, None
    if args.gps:
        latitude, longitude, radius = (float(part) for part in args.gps.split(","))
        gps_center, gps_radius = (latitude, longitude), int(radius)
    new = NewPoll(
        title=args.title,
        options=args.option,
        opens_at=opens,
        closes_at=opens + timedelta(days=args.days),
        description=args.description,
        show_interim_results=args.interim,
        visibility=args.visibility,
        password=sys.stdin.readline().rstrip("\n") if args.password_stdin else None,
        roll_phones=tuple(polls.parse_roll_csv(args.roll.read_text(encoding="utf-8"))) if args.roll else (),
        gps_center=gps_center,
        gps_radius_m=gps_radius,
    )
    with session_scope(get_session_factory()) as session:
        poll, token = polls.create_poll(session, new, kind="policy", created_by=f"cli:{args.by}")
        public_id = poll.public_id
    url = poll_url(public_id, token)
    print(f"poll {public_id} created, open {new.opens_at:%Y-%m-%d %H:%M} – {new.closes_at:%Y-%m-%d %H:%M} UTC")
    print(url)
    if token and args.qr_png:
        # The token is stored only hashed: this is the one moment the QR link can be drawn.
        segno.make(url, error="m").save(str(args.qr_png), scale=8)
        print(f"QR code written to {args.qr_png}")
    return 0


def list_polls(args: argparse.Namespace) -> int:
    with session_scope(get_session_factory()) as session:
        for poll in session.query(Poll).order_by(Poll.id.desc()).limit(50):
            print(f"{poll.public_id}\t{poll.status}\t{poll.visibility}\t{poll.ledger_size} ballots\t{poll.title}")
    return 0


def change(args: argparse.Namespace) -> int:
    with session_scope(get_session_factory()) as session:
        poll = polls.poll_by_public_id(session, args.id)
        if poll is None:
            print(f"no poll {args.id}", file=sys.stderr)
            return 1
        if args.command == "close":
            votes.close_poll(session, poll.id, early=True)
        else:
            polls.moderate(session, poll, approve=args.command == "approve")
        print(f"poll {args.id} is now {poll.status}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m civic.poll_admin", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("create", help="create a city (policy) poll")
    new.add_argument("--title", required=True)
    new.add_argument("--option", action="append", required=True, help="repeat for each option (2-20)")
    new.add_argument("--description", default="")
    new.add_argument("--opens", help="ISO time with offset, e.g. 2026-12-01T09:00+09:00 (default: now)")
    new.add_argument("--days", type=float, default=7.0, help="how long it stays open")
    new.add_argument("--interim", action="store_true", help="show results while the poll is open")
    new.add_argument("--visibility", choices=polls.VISIBILITIES, default="public")
    new.add_argument("--roll", type=Path, help="CSV whose first column is the phone numbers allowed to vote")
    new.add_argument("--gps", help="centre and radius: LAT,LON,METRES")
    new.add_argument("--password-stdin", action="store_true", help="read the poll password from stdin")
    new.add_argument("--qr-png", type=Path, help="where to write the QR code of a qr poll's link")
    new.add_argument("--by", default="staff", help="who creates it (kept on the poll)")
    new.set_defaults(run=create)
    commands.add_parser("list", help="the latest polls").set_defaults(run=list_polls)
    for name in ("approve", "reject", "close"):
        sub = commands.add_parser(name, help=f"{name} a poll")
        sub.add_argument("id")
        sub.set_defaults(run=change)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except (PollError, ValueError) as error:
        print(f"refused: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
