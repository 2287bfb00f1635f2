"""Korean, English and Japanese labels for statuses, categories, districts and dates."""

from __future__ import annotations

from datetime import date, datetime

from civic.districts import district_names
from civic.models import Department

LANGUAGES: tuple[str, ...] = ("ko", "en", "ja")
DEFAULT_LANGUAGE = "ko"
# Each language in its own script, as a picker shows it.
LANGUAGE_NAMES = {"ko": "한국어", "en": "English", "ja": "日本語"}

STATUS_LABELS: dict[str, dict[str, str]] = {
    "received": {"ko": "접수", "en": "Received", "ja": "受付"},
    "accepted": {"ko": "접수 확인", "en": "Accepted", "ja": "受付確認"},
    "assigned": {"ko": "담당 부서 배정", "en": "Assigned", "ja": "担当部署に割当"},
    "in_progress": {"ko": "처리 중", "en": "In progress", "ja": "処理中"},
    "resolved": {"ko": "처리 완료", "en": "Resolved", "ja": "処理完了"},
    "rejected": {"ko": "처리 불가", "en": "Rejected", "ja": "処理不可"},
    "reopened": {"ko": "재접수", "en": "Reopened", "ja": "再受付"},
    "withdrawn": {"ko": "취하", "en": "Withdrawn", "ja": "取り下げ"},
    # Not a status: the event log's mark of a citizen's answer to "fixed?" (civic.feedback.FEEDBACK_EVENT).
    "feedback": {"ko": "시민 확인", "en": "Citizen's answer", "ja": "市民の確認"},
}

CATEGORY_LABELS: dict[str, dict[str, str]] = {
    "illegal_parking": {"ko": "불법 주정차", "en": "Illegal parking", "ja": "違法駐停車"},
    "illegal_banner": {"ko": "불법 현수막·광고물", "en": "Illegal banner", "ja": "違法横断幕・広告物"},
    "illegal_dumping": {"ko": "쓰레기 무단투기", "en": "Illegal dumping", "ja": "ごみの不法投棄"},
    "broken_sidewalk": {"ko": "보도 파손", "en": "Broken sidewalk", "ja": "歩道の破損"},
    "broken_streetlight": {"ko": "가로등 고장", "en": "Broken streetlight", "ja": "街路灯の故障"},
    "noise": {"ko": "소음", "en": "Noise", "ja": "騒音"},
    "sewer": {"ko": "하수도·악취", "en": "Sewer", "ja": "下水道・悪臭"},
    "urban_facility": {"ko": "도시시설물", "en": "Urban facility", "ja": "都市施設"},
    "construction": {"ko": "공사장", "en": "Construction site", "ja": "工事現場"},
    "safety": {"ko": "안전 위험", "en": "Safety hazard", "ja": "安全上の危険"},
}

_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def language(lang: str | None) -> str:
    """`lang` if supported, else Korean (the city's language)."""
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def _label(table: dict[str, dict[str, str]], key: str, lang: str | None) -> str:
    labels = table.get(key)
    # An unknown key is shown raw rather than hidden: better an odd word than a lost status.
    return labels[language(lang)] if labels else key


def status_label(status: str, lang: str | None) -> str:
    """The name of a case status, e.g. ("in_progress", "en") → "In progress"."""
    return _label(STATUS_LABELS, str(status), lang)


def category_label(category: str, lang: str | None) -> str:
    """The name of a complaint category, e.g. ("noise", "ja") → "騒音"."""
    return _label(CATEGORY_LABELS, category, lang)


def district_label(gu_ko: str, lang: str | None) -> str:
    """A gu's name: 마포구 / Mapo-gu / 麻浦区."""
    names = district_names().get(gu_ko)
    if names is None:
        return gu_ko
    return {"ko": names.gu_ko, "en": names.gu_en, "ja": names.ja_kanji}[language(lang)]


def format_date(d: date, lang: str | None) -> str:
    """2026년 12월 4일 / 4 December 2026 / 2026年12月4日."""
    lang = language(lang)
    if lang == "en":
        return f"{d.day} {_EN_MONTHS[d.month - 1]} {d.year}"
    if lang == "ja":
        return f"{d.year}年{d.month}月{d.day}日"
    return f"{d.year}년 {d.month}월 {d.day}일"


_AGO_UNITS = {"ko": ("일", "시간", "분"), "ja": ("日", "時間", "分")}


def format_ago(then: datetime, now: datetime, lang: str | None) -> str:
    """How long ago, in the largest whole unit: 2시간 전 / 2 hours ago / 2時間前 (at least a minute)."""
    minutes = max(1, int((now - then).total_seconds() // 60))
    index, value = (0, minutes // 1440) if minutes >= 1440 else (1, minutes // 60) if minutes >= 60 else (2, minutes)
    lang = language(lang)
    if lang == "en":
        unit = ("day", "hour", "minute")[index]
        return f"{value} {unit}{'' if value == 1 else 's'} ago"
    return f"{value}{_AGO_UNITS[lang][index]}{' 전' if lang == 'ko' else '前'}"


def department_name(department: Department, lang: str | None) -> str:
    """A department's name in the citizen's language."""
    return {"ko": department.name_ko, "en": department.name_en, "ja": department.name_ja}[language(lang)]
