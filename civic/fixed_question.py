"""The "fixed?" question a resolution asks: recorded per conversation, and its texts in ko/en/ja (buttons, SMS)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from civic.i18n import language
from civic.models import Case, CaseEvent, CaseFeedback, Conversation

ASKED = "asked"

QUESTION = {
    "ko": "문제가 해결됐나요?",
    "en": "Is the problem fixed?",
    "ja": "問題は解決しましたか？",
}
FIXED_TITLE = {"ko": "해결됐어요", "en": "It's fixed", "ja": "解決しました"}
NOT_FIXED_TITLE = {"ko": "아직이에요", "en": "Not yet", "ja": "まだです"}
# A caller answers by SMS: keys, not buttons.
SMS_HINT = {
    "ko": "해결됐으면 1, 아직이면 2를 답장해 주세요.",
    "en": "Reply 1 if it is fixed, 2 if not yet.",
    "ja": "解決していれば1、まだなら2を返信してください。",
}
REPLIES: dict[str, dict[str, str]] = {
    "ask_rating": {
        "ko": "[{number}] 다행이에요. 처리에 얼마나 만족하셨나요? 1(불만족)~5(매우 만족)로 알려 주세요. "
        "하실 말씀이 있으면 숫자 뒤에 적어 주세요.",
        "en": "[{number}] Glad to hear it. How satisfied are you, from 1 (not at all) to 5 (very)? "
        "Add a comment after the number if you like.",
        "ja": "[{number}] よかったです。対応の満足度を1（不満）〜5（とても満足）でお知らせください。"
        "ご意見があれば数字の後に書いてください。",
    },
    "ask_note": {
        "ko": "[{number}] 무엇이 아직 해결되지 않았는지 알려 주세요. 사진을 보내셔도 돼요.",
        "en": "[{number}] Please tell me what is still wrong. You can send a photo too.",
        "ja": "[{number}] まだ解決していない点を教えてください。写真を送っていただいても構いません。",
    },
    "reopened": {
        "ko": "[{number}] 다시 접수했어요. {department}에서 다시 처리하며, 처리 기한은 {due}입니다.",
        "en": "[{number}] Reopened. {department} will handle it again by {due}.",
        "ja": "[{number}] 再受付しました。{department}が{due}までに再度対応します。",
    },
    "to_operator": {
        "ko": "[{number}] 다시 접수했어요. 여러 번 해결되지 않아 120 상담사가 직접 확인하고 연락드릴게요.",
        "en": "[{number}] Reopened. As it is still not fixed after several tries, a 120 operator will look into it.",
        "ja": "[{number}] 再受付しました。何度も解決していないため、120番の担当者が直接確認します。",
    },
    "ask_comment": {
        "ko": "[{number}] 더 하실 말씀이 있으면 적어 주세요. 없으면 건너뛰셔도 돼요.",
        "en": "[{number}] Anything you would like to add? Write it here, or skip.",
        "ja": "[{number}] ほかにご意見があればお書きください。なければスキップしてください。",
    },
    "thanks": {
        "ko": "[{number}] 소중한 의견 감사합니다.",
        "en": "[{number}] Thank you for your feedback.",
        "ja": "[{number}] ご意見ありがとうございます。",
    },
    "rating_hint": {
        "ko": "[{number}] 1부터 5까지 숫자로 답장해 주세요.",
        "en": "[{number}] Please reply with a number from 1 to 5.",
        "ja": "[{number}] 1〜5の数字で返信してください。",
    },
    "answer_hint": {
        "ko": "[{number}] " + SMS_HINT["ko"],
        "en": "[{number}] " + SMS_HINT["en"],
        "ja": "[{number}] " + SMS_HINT["ja"],
    },
    "already_handled": {
        "ko": "[{number}] 이 민원은 이미 다시 처리 중이에요.",
        "en": "[{number}] This case is already being handled again.",
        "ja": "[{number}] この案件はすでに再対応中です。",
    },
}


def reply(kind: str, values: dict[str, str], lang: str | None) -> str:
    """One of REPLIES in `lang`, filled in (a civic.feedback.Told is `kind, values`)."""
    return REPLIES[kind][language(lang)].format(**values)


def question_text(lang: str | None, channel: str) -> str:
    """The question appended to the resolution notice: a tap in a chat, keys by SMS."""
    return (SMS_HINT if channel == "phone" else QUESTION)[language(lang)]


def question_buttons(number: str, lang: str | None) -> list[dict[str, str]]:
    """'해결됐어요 / 아직이에요' as buttons whose payloads name the case and the language to answer in: the answer may
    come days later, in a new Rasa session that remembers neither."""
    lang = language(lang)
    entity = f'{{"case_id":"{number}","language":"{lang}"}}'
    return [
        {"title": FIXED_TITLE[lang], "payload": f"/case_fixed{entity}"},
        {"title": NOT_FIXED_TITLE[lang], "payload": f"/case_not_fixed{entity}"},
    ]


def ask_if_fixed(
    session: Session, *, case: Case, event: CaseEvent, conversation: Conversation, lang: str, text: str
) -> tuple[str, list[dict[str, str]]]:
    """The resolution notice `text` with the question appended, and its buttons; the question is recorded so that
    the answer finds it (civic.feedback)."""
    session.add(
        CaseFeedback(
            case_id=case.id,
            event_id=event.id,
            conversation_id=conversation.id,
            language=lang,
            state=ASKED,
            asked_at=event.created_at,
        )
    )
    return text + "\n" + question_text(lang, conversation.channel), question_buttons(case.number, lang)
