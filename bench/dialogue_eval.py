"""`make dialogue-eval`: plays the multi-turn conversation set (tests/dialogues/) through the real web chat.

Starts the stack once on a throw-away SQLite database, plays each conversation as a fresh citizen, reads
the cases filed in that conversation from the database and judges them against the expectation. Prints
one line per failing conversation and the success rate per language; writes bench/results/dialogue_eval.json.

Usage: python -m bench.dialogue_eval [--lang ko] [--only ID] [--json FILE] [--min-rate 0.95]
A run narrowed by --lang or --only writes JSON only when --json is given, so it never replaces the full figures.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bench.common import RESULTS, machine
from civic.db import make_engine, make_session_factory
from civic.migrate import upgrade
from civic.models import Case, Message
from civic.models import Conversation as ConversationRow
from tests.dialogues.schema import CASE_PLACEHOLDER, LANGUAGES, Conversation, FiledCase, Observed, Turn, judge, load_set
from tests.e2e.stack import ChatClient, rasa_api_params, running_stack, warm_up

CASE_NUMBER = re.compile(r"SR-\d{4}-\d{6}")
DEFAULT_JSON = RESULTS / "dialogue_eval.json"


class TurnError(RuntimeError):
    """A turn the citizen could not play (a button that was not offered, an HTTP error)."""


@dataclass
class Outcome:
    """One played conversation: what it left, what differed from the expectation, and its turn-by-turn trace."""

    conversation: Conversation
    problems: list[str]
    trace: list[dict[str, Any]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return not self.problems

    @property
    def last_reply(self) -> str:
        for step in reversed(self.trace):
            if step.get("bot"):
                return str(step["bot"])
        return ""


def shown(turn: Turn) -> str:
    if turn.tap:
        return f"[tap {turn.tap}]"
    if turn.gps:
        return f"[gps {turn.gps[0]}, {turn.gps[1]}]"
    return turn.text


def send(citizen: ChatClient, turn: Turn, offered: list[dict[str, Any]], last_case: str | None) -> list[dict[str, Any]]:
    """Plays one turn as the web page would: a tap sends the button's title with its payload."""
    if turn.tap:
        titles = [b["title"] for r in offered for b in r.get("buttons") or [] if b["payload"] == turn.tap]
        if not titles:
            raise TurnError(f"the bot offered no {turn.tap} button to tap")
        response = citizen.send(titles[0], payload=turn.tap)
    elif turn.gps:
        response = citizen.send("", latitude=turn.gps[0], longitude=turn.gps[1])
    else:
        text = turn.text
        if CASE_PLACEHOLDER in text:
            if last_case is None:
                raise TurnError(f"the turn refers to {CASE_PLACEHOLDER} but the bot gave no case number yet")
            text = text.replace(CASE_PLACEHOLDER, last_case)
        response = citizen.send(text)
    if response.status_code != 200:
        raise TurnError(f"HTTP {response.status_code}: {response.text[:200]}")
    return list(response.json()["replies"])


def decline_duplicate(citizen: ChatClient, offered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Taps "no, file a new report" on the offer to follow an open case of the same problem (actions.me_too)."""
    titles = [b["title"] for r in offered for b in r.get("buttons") or [] if b["payload"] == "/deny"]
    response = citizen.send(titles[0] if titles else "", payload="/deny")
    if response.status_code != 200:
        raise TurnError(f"HTTP {response.status_code}: {response.text[:200]}")
    return list(response.json()["replies"])


def conversation_row(sessions: sessionmaker[Session], citizen: ChatClient) -> ConversationRow | None:
    """The citizen's conversation, found through a message of its transcript (no secret needed)."""
    messages = citizen.transcript()
    if not messages:
        return None
    with sessions() as session:
        message = session.get(Message, messages[0]["id"])
        row = session.get(ConversationRow, message.conversation_id) if message else None
        if row is not None:
            session.expunge(row)
        return row


def requested_slot(rasa_url: str, sender: str) -> str | None:
    """The slot the complaint form is asking for now, from Rasa's tracker (None outside the form)."""
    response = httpx.get(
        f"{rasa_url}/conversations/{sender}/tracker",  # Sanic does not unquote the id: "web:<hex>" goes as is
        params=rasa_api_params() | {"include_events": "NONE"},
        timeout=30,
    )
    response.raise_for_status()
    tracker = response.json()
    if not (tracker.get("active_loop") or {}).get("name"):
        return None
    slot = (tracker.get("slots") or {}).get("requested_slot")
    return str(slot) if slot else None


def observe(sessions: sessionmaker[Session], conversation_id: int | None, place_answers: list[str]) -> Observed:
    if conversation_id is None:
        return Observed([], place_answers=place_answers)
    with sessions() as session:
        cases = session.execute(select(Case).where(Case.conversation_id == conversation_id).order_by(Case.id)).scalars()
        filed = [FiledCase(c.number, c.category, c.district, c.place, c.description) for c in cases]
        row = session.get(ConversationRow, conversation_id)
        handoff = row is not None and row.handoff_requested_at is not None
    return Observed(filed, handoff, place_answers)


def play(conversation: Conversation, web_url: str, rasa_url: str, sessions: sessionmaker[Session]) -> Outcome:
    """Plays one conversation as a fresh citizen and judges what it filed."""
    citizen = ChatClient(web_url)
    trace: list[dict[str, Any]] = []
    asked: str | None = None
    replies: list[dict[str, Any]] = []
    last_case: str | None = None
    row: ConversationRow | None = None
    place_answers: list[str] = []
    error = None
    try:
        for index, turn in enumerate(conversation.turns):
            if not turn.wanted(asked):
                trace.append({"turn": index, "skipped": shown(turn), "asked": asked})
                continue
            if asked == "place" and turn.text:
                place_answers.append(turn.text)
            try:
                replies = send(citizen, turn, replies, last_case)
                row = row or conversation_row(sessions, citizen)
                now_asks = requested_slot(rasa_url, f"web:{row.external_id}") if row else None
                if now_asks == "follow_duplicate" and row is not None:
                    # Another conversation of the set reported the same spot: the script's citizen files all the same.
                    replies = decline_duplicate(citizen, replies)
                    now_asks = requested_slot(rasa_url, f"web:{row.external_id}")
            except (TurnError, httpx.HTTPError) as failure:
                error = f"turn {index} ({shown(turn)}): {failure}"
                break
            bot = "\n".join(r["text"] for r in replies)
            last_case = (CASE_NUMBER.findall(bot) or [last_case])[-1]
            buttons = [b["payload"] for r in replies for b in r.get("buttons") or []]
            step = {"turn": index, "citizen": shown(turn), "asked": asked, "bot": bot, "buttons": buttons}
            trace.append(step | {"now_asks": now_asks})
            asked = now_asks
    finally:
        citizen.http.close()
    problems = judge(conversation, observe(sessions, row.id if row else None, place_answers))
    return Outcome(conversation, ([error] if error else []) + problems, trace)


def evaluate(
    conversations: list[Conversation], web_url: str, rasa_url: str, sessions: sessionmaker[Session]
) -> list[Outcome]:
    warm_up(rasa_url)  # the engine's first turn loads lazily and could outlast the web app's Rasa timeout
    return [play(c, web_url, rasa_url, sessions) for c in conversations]


def rates(outcomes: list[Outcome]) -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {}
    for language in LANGUAGES:
        mine = [o for o in outcomes if o.conversation.language == language]
        if mine:
            succeeded = sum(o.succeeded for o in mine)
            table[language] = {
                "conversations": len(mine),
                "succeeded": succeeded,
                "rate": round(succeeded / len(mine), 3),
            }
    return table


def failure_lines(outcomes: list[Outcome]) -> list[str]:
    """One line per failing conversation: id, what differed, the bot's last reply."""
    return [
        f"FAIL {o.conversation.id}: {'; '.join(o.problems)} | bot: {' '.join(o.last_reply.split())[:200]}"
        for o in outcomes
        if not o.succeeded
    ]


def table_lines(table: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"{'language':<10}{'conversations':>14}{'succeeded':>11}{'rate':>7}"]
    lines += [f"{lang:<10}{r['conversations']:>14}{r['succeeded']:>11}{r['rate']:>7.3f}" for lang, r in table.items()]
    return lines


def model_file(rasa_url: str) -> str:
    status = httpx.get(f"{rasa_url}/status", params=rasa_api_params(), timeout=30).json()
    return Path(str(status.get("model_file") or "")).name


def write_json(path: Path, outcomes: list[Outcome], model: str) -> None:
    result = {
        "benchmark": "dialogue_eval",
        "machine": machine(),
        "model": model,
        "languages": rates(outcomes),
        "failures": [
            {
                "id": o.conversation.id,
                "language": o.conversation.language,
                "note": o.conversation.note,
                "problems": o.problems,
                "last_reply": o.last_reply,
                "trace": o.trace,
            }
            for o in outcomes
            if not o.succeeded
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", choices=LANGUAGES, action="append", help="only this language (repeatable)")
    parser.add_argument("--only", help="only the conversation with this id")
    parser.add_argument("--json", type=Path, help=f"write the results here (default {DEFAULT_JSON} for a full run)")
    parser.add_argument("--min-rate", type=float, help="exit 1 when a language's success rate is below this")
    args = parser.parse_args(argv)
    conversations = load_set(languages=tuple(args.lang or LANGUAGES), only=args.only)
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/dialogues.db"
        upgrade(url)
        engine = make_engine(url)
        try:
            with running_stack(url) as stack:
                model = model_file(stack.rasa_url)
                outcomes = evaluate(conversations, stack.web_url, stack.rasa_url, make_session_factory(engine))
        finally:
            engine.dispose()
    for line in failure_lines(outcomes):
        print(line)
    table = rates(outcomes)
    print(f"model {model}")
    print("\n".join(table_lines(table)))
    path = args.json or (None if args.lang or args.only else DEFAULT_JSON)
    if path is not None:
        write_json(path, outcomes, model)
        print(f"written to {path}")
    below = [lang for lang, r in table.items() if args.min_rate is not None and r["rate"] < args.min_rate]
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
