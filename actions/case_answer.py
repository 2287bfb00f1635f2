"""One answer about a case: the number the turn names (if any), looked up in one transaction, said as one response."""

from __future__ import annotations

from collections.abc import Callable

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.context import conversation_id_of, in_session, latest_entity
from civic.cases import normalize_case_number

# A domain response and the values that fill it.
Answer = tuple[str, dict[str, str]]
# (session, this conversation's id, the case number the turn names or None) → the answer.
LookUp = Callable[[Session, int, str | None], Answer]


async def answer_about_case(dispatcher: CollectingDispatcher, tracker: Tracker, look_up: LookUp) -> dict[str, str]:
    """Says `look_up`'s response for the number the citizen named (canonical); returns its values."""
    asked = latest_entity(tracker, "case_id")
    number = normalize_case_number(asked) if asked else None
    response, values = await in_session(lambda session: look_up(session, conversation_id_of(session, tracker), number))
    dispatcher.utter_message(response=response, **values)
    return values
