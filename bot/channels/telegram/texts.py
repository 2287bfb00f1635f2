"""What only the Telegram adapter shows: menu commands, keyboard labels, the language picker."""

from __future__ import annotations

CHOOSE_LANGUAGE = "언어를 선택해 주세요 · Choose your language · 言語を選んでください"

# Command → description per language, in the order of Telegram's menu.
COMMANDS: dict[str, dict[str, str]] = {
    "report": {"ko": "불편 신고하기", "en": "Report a problem", "ja": "問題を通報する"},
    "status": {"ko": "처리 상황 확인 (접수번호)", "en": "Check a case (case number)", "ja": "進捗を確認（案件番号）"},
    "myreports": {"ko": "내 신고 목록", "en": "My reports", "ja": "私の通報一覧"},
    "cancel": {
        "ko": "작성 중인 신고 취소·신고 취하",
        "en": "Cancel a draft or withdraw a report",
        "ja": "作成中の通報の取消・取り下げ",
    },
    "polls": {"ko": "진행 중인 시민 투표", "en": "Open city polls", "ja": "実施中の市民投票"},
    "language": {"ko": "언어 바꾸기", "en": "Change language", "ja": "言語を変更"},
    "help": {"ko": "도움말", "en": "Help", "ja": "ヘルプ"},
    "start": {"ko": "처음으로", "en": "Start over", "ja": "はじめから"},
}

SHARE_LOCATION = {"ko": "📍 위치 보내기", "en": "📍 Send location", "ja": "📍 位置を送る"}
VERIFY_PHONE = {"ko": "📞 내 번호 인증", "en": "📞 Verify my number", "ja": "📞 番号を認証"}
INPUT_PLACEHOLDER = {
    "ko": "무엇이 어디에서 불편한가요?",
    "en": "What is the problem, and where?",
    "ja": "どこで何が問題ですか？",
}

BUTTON_EXPIRED = {
    "ko": "이 버튼은 더 이상 쓸 수 없어요.",
    "en": "This button has expired.",
    "ja": "このボタンは使えなくなりました。",
}

PRIVATE_ONLY = (
    "저는 1:1 대화에서만 민원을 받아요. 저를 눌러 개인 대화를 시작해 주세요.\n"
    "I only take reports in a private chat: tap my name and start one.\n"
    "通報は1対1のチャットでのみ受け付けます。私の名前をタップして個別チャットを始めてください。"
)


def text_for(texts: dict[str, str], language: str) -> str:
    return texts.get(language, texts["ko"])
