"""A resolution notice reaches Telegram with "fixed?" as an inline keyboard pointing at our transcript."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session
from telegram import InlineKeyboardMarkup

from bot.channels.telegram.handlers import offered_button
from bot.channels.telegram.render import markup_for, parse_button_data
from civic.cases import file_case
from civic.conversations import get_or_create_conversation
from civic.models import OutboxMessage
from tests.case_paths import resolve


def test_the_notice_taps_back_to_the_fixed_payloads(session: Session) -> None:
    chat = get_or_create_conversation(session, channel="telegram", external_id=uuid.uuid4().hex, language="en")
    case = file_case(
        session,
        category="sewer",
        district="강동구",
        place="천호역 3번 출구",
        description="하수구 냄새",
        channel="telegram",
        language="en",
        conversation_id=chat.id,
    )
    resolve(session, case, "Cleaned.")
    notice = (
        session.execute(
            select(OutboxMessage).where(OutboxMessage.conversation_id == chat.id).order_by(OutboxMessage.id.desc())
        )
        .scalars()
        .first()
    )
    assert notice is not None
    markup = markup_for(notice.data)
    assert isinstance(markup, InlineKeyboardMarkup)
    keys = [button for row in markup.inline_keyboard for button in row]
    assert [k.text for k in keys] == ["It's fixed", "Not yet"]
    taps = [offered_button(session, chat.id, parse_button_data(str(k.callback_data))) for k in keys]
    assert taps == [
        ("It's fixed", f'/case_fixed{{"case_id":"{case.number}","language":"en"}}'),
        ("Not yet", f'/case_not_fixed{{"case_id":"{case.number}","language":"en"}}'),
    ]
