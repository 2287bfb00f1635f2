"""Texts that tell a citizen their case changed status, in the case's language."""

from __future__ import annotations

from sqlalchemy.orm import Session

from civic.i18n import category_label, district_label, format_date, language
from civic.models import Case, Department

# {number} {category} {district} {department} {due} are filled in; the note follows on its own line.
STATUS_TEXTS: dict[str, dict[str, str]] = {
    "received": {
        "ko": "[{number}] 민원이 접수되었습니다. 처리 기한은 {due}입니다.",
        "en": "[{number}] Your report has been received. It is due by {due}.",
        "ja": "[{number}] 申告を受け付けました。処理期限は{due}です。",
    },
    "accepted": {
        "ko": "[{number}] 120 상담사가 민원을 확인했습니다 ({category}, {district}).",
        "en": "[{number}] A 120 operator has checked your report ({category}, {district}).",
        "ja": "[{number}] 120番の担当者が申告を確認しました（{category}、{district}）。",
    },
    "assigned": {
        "ko": "[{number}] {department}에 배정되었습니다.",
        "en": "[{number}] Your report has been assigned to {department}.",
        "ja": "[{number}] {department}に割り当てられました。",
    },
    "in_progress": {
        "ko": "[{number}] 처리 중입니다.",
        "en": "[{number}] Your report is being handled.",
        "ja": "[{number}] 処理中です。",
    },
    "resolved": {
        "ko": "[{number}] 처리가 완료되었습니다.",
        "en": "[{number}] Your report has been resolved.",
        "ja": "[{number}] 処理が完了しました。",
    },
    "rejected": {
        "ko": "[{number}] 처리할 수 없어 종결되었습니다.",
        "en": "[{number}] Your report could not be handled and has been closed.",
        "ja": "[{number}] 対応できないため終了しました。",
    },
    "reopened": {
        "ko": "[{number}] 민원이 다시 접수되었습니다.",
        "en": "[{number}] Your report has been reopened.",
        "ja": "[{number}] 申告を再受付しました。",
    },
    "withdrawn": {
        "ko": "[{number}] 민원이 취하되었습니다.",
        "en": "[{number}] Your report has been withdrawn.",
        "ja": "[{number}] 申告を取り下げました。",
    },
}

NOTE_PREFIX: dict[str, dict[str, str]] = {
    "resolved": {"ko": "답변: ", "en": "Answer: ", "ja": "回答: "},
    "rejected": {"ko": "사유: ", "en": "Reason: ", "ja": "理由: "},
}


def status_text(session: Session, *, case: Case, status: str, note: str | None = None, lang: str | None = None) -> str:
    """The message announcing that `case` is now `status`, in `lang` (default: the case's); the official's note."""
    lang = language(lang or case.language)
    department = session.get(Department, case.department_id)
    text = STATUS_TEXTS[status][lang].format(
        number=case.number,
        category=category_label(case.category, lang),
        district=district_label(case.district, lang),
        department=getattr(department, f"name_{lang}", "") if department else "",
        due=format_date(case.due_at, lang),
    )
    prefix = NOTE_PREFIX.get(status)
    if prefix and note:
        text += "\n" + prefix[lang] + note
    return text
