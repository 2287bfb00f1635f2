"""What the public voting pages and their SMS say, in Korean, English and Japanese."""

from __future__ import annotations

import math

from civic.i18n import DEFAULT_LANGUAGE

SMS_TEXT = {
    "ko": "[서울시 엠보팅] 인증번호 {code} (5분 안에 입력)",
    "en": "[Seoul mVoting] Code {code} (enter within 5 minutes)",
    "ja": "[ソウル市エムボーティング] 認証番号 {code}（5分以内に入力）",
}

TEXTS: dict[str, dict[str, str]] = {
    "site": {"ko": "서울시 엠보팅", "en": "Seoul mVoting", "ja": "ソウル市エムボーティング"},
    "polls_title": {"ko": "시민 투표", "en": "Public polls", "ja": "市民投票"},
    "open_polls": {"ko": "진행 중인 투표", "en": "Open polls", "ja": "実施中の投票"},
    "no_open_polls": {
        "ko": "지금 진행 중인 투표가 없어요.",
        "en": "No polls are open right now.",
        "ja": "現在実施中の投票はありません。",
    },
    "closed_polls": {"ko": "최근 마감된 투표", "en": "Recently closed", "ja": "最近締め切られた投票"},
    "closes": {"ko": "{when} 마감", "en": "Closes {when}", "ja": "{when} 締切"},
    "closed_on": {"ko": "{when} 마감됨", "en": "Closed {when}", "ja": "{when} 締切済み"},
    "window": {"ko": "투표 기간: {start} ~ {end}", "en": "Voting: {start} to {end}", "ja": "投票期間：{start}～{end}"},
    "vote_link": {"ko": "투표하기", "en": "Vote", "ja": "投票する"},
    "results_link": {"ko": "결과 보기", "en": "Results", "ja": "結果を見る"},
    "all_polls": {"ko": "투표 목록", "en": "All polls", "ja": "投票一覧"},
    "visibility_public": {
        "ko": "누구나 참여 (휴대전화 인증)",
        "en": "Open to all (phone check)",
        "ja": "どなたでも参加可（携帯電話認証）",
    },
    "visibility_roll": {"ko": "명부에 있는 번호만", "en": "Listed numbers only", "ja": "名簿の番号のみ"},
    "visibility_password": {"ko": "비밀번호 필요", "en": "Password required", "ja": "パスワードが必要"},
    "visibility_qr": {"ko": "QR 코드 링크로만", "en": "QR code link only", "ja": "QRコードのリンクからのみ"},
    "visibility_gps": {"ko": "해당 지역 안에서만", "en": "Inside the area only", "ja": "対象地域内のみ"},
    "upcoming": {
        "ko": "아직 시작 전이에요. {when}에 열려요.",
        "en": "Not open yet. Voting starts {when}.",
        "ja": "まだ開始前です。{when}に開始します。",
    },
    "poll_closed": {"ko": "마감된 투표예요.", "en": "This poll is closed.", "ja": "この投票は締め切られました。"},
    "options": {"ko": "선택지", "en": "Options", "ja": "選択肢"},
    "password_label": {"ko": "투표 비밀번호", "en": "Poll password", "ja": "投票パスワード"},
    "qr_needed": {
        "ko": "이 투표는 안내받은 QR 코드 링크로 열어야 참여할 수 있어요.",
        "en": "This poll can only be joined through the QR code link you were given.",
        "ja": "この投票は案内されたQRコードのリンクから開いた場合のみ参加できます。",
    },
    "qr_ok": {
        "ko": "QR 코드 링크로 열었어요.",
        "en": "Opened from the QR code link.",
        "ja": "QRコードのリンクから開きました。",
    },
    "gps_hint": {
        "ko": "이 투표는 해당 지역 안에서만 참여할 수 있어요. '내 위치 확인'을 눌러 주세요.",
        "en": "You can vote only from inside the poll's area. Press 'Share my location'.",
        "ja": "この投票は対象地域内でのみ参加できます。「現在地を確認」を押してください。",
    },
    "gps_button": {"ko": "내 위치 확인", "en": "Share my location", "ja": "現在地を確認"},
    "gps_waiting": {"ko": "위치를 확인하는 중…", "en": "Getting your location…", "ja": "位置情報を取得中…"},
    "gps_ok": {"ko": "위치를 확인했어요.", "en": "Location received.", "ja": "位置情報を取得しました。"},
    "gps_failed": {
        "ko": "위치를 가져오지 못했어요. 브라우저의 위치 권한을 확인해 주세요.",
        "en": "Could not get your location. Please check the browser's location permission.",
        "ja": "位置情報を取得できませんでした。ブラウザの位置情報の許可を確認してください。",
    },
    "gps_unsupported": {
        "ko": "이 브라우저는 위치 확인을 지원하지 않아요.",
        "en": "This browser cannot share a location.",
        "ja": "このブラウザは位置情報に対応していません。",
    },
    "gps_js": {
        "ko": "위치 확인에는 JavaScript가 필요해요.",
        "en": "Sharing your location needs JavaScript.",
        "ja": "位置の確認にはJavaScriptが必要です。",
    },
    "phone_label": {"ko": "휴대전화 번호", "en": "Mobile phone number", "ja": "携帯電話番号"},
    "send_code": {"ko": "인증번호 받기", "en": "Send code", "ja": "認証番号を受け取る"},
    "code_label": {"ko": "인증번호 (6자리)", "en": "Code (6 digits)", "ja": "認証番号（6桁）"},
    "vote_button": {"ko": "투표하기", "en": "Vote", "ja": "投票する"},
    "phone_note": {
        "ko": "번호는 본인 확인과 1인 1표에만 쓰이고, 투표 장부에는 남지 않아요.",
        "en": "Your number is used only to check that each person votes once; it is not written in the vote log.",
        "ja": "番号は本人確認と1人1票の確認にのみ使われ、投票台帳には残りません。",
    },
    "code_sent": {
        "ko": "끝자리 {last4} 번호로 인증번호를 보냈어요. 5분 안에 입력해 주세요.",
        "en": "We sent a code to the number ending {last4}. Enter it within 5 minutes.",
        "ja": "末尾{last4}の番号に認証番号を送りました。5分以内に入力してください。",
    },
    "invalid_phone": {
        "ko": "휴대전화 번호를 확인해 주세요 (예: 010-1234-5678).",
        "en": "Please check the phone number (e.g. 010-1234-5678).",
        "ja": "携帯電話番号を確認してください（例：010-1234-5678）。",
    },
    "too_many_sends": {
        "ko": "인증번호를 너무 자주 요청했어요. {wait} 후에 다시 받아 주세요.",
        "en": "Too many code requests for this number. Please try again in {wait}.",
        "ja": "認証番号の要求が多すぎます。{wait}後にもう一度お試しください。",
    },
    "ip_limited": {
        "ko": "이 연결에서 인증번호 요청이 너무 많아요. 잠시 후 다시 시도해 주세요.",
        "en": "Too many code requests from this connection. Please try again later.",
        "ja": "この接続からの認証番号の要求が多すぎます。しばらくしてからお試しください。",
    },
    "unsupported_number": {
        "ko": "인증번호는 한국 휴대전화 번호(010 등)로만 보낼 수 있어요.",
        "en": "Codes can only be sent to Korean mobile numbers (010 …).",
        "ja": "認証番号は韓国の携帯電話番号（010など）にのみ送信できます。",
    },
    "check_limited": {
        "ko": "이 연결에서 인증번호를 너무 많이 입력했어요. {wait} 후에 다시 시도해 주세요.",
        "en": "Too many code attempts from this connection. Please try again in {wait}.",
        "ja": "この接続からの認証番号の入力が多すぎます。{wait}後にもう一度お試しください。",
    },
    "no_code": {
        "ko": "먼저 인증번호를 받아 주세요 (인증번호는 한 번만 쓸 수 있어요).",
        "en": "Please request a code first (each code works only once).",
        "ja": "先に認証番号を受け取ってください（認証番号は1回のみ有効です）。",
    },
    "expired": {
        "ko": "인증번호가 만료됐어요. 새 인증번호를 받아 주세요.",
        "en": "The code has expired. Please request a new one.",
        "ja": "認証番号の有効期限が切れました。新しい番号を受け取ってください。",
    },
    "wrong_code": {
        "ko": "인증번호가 맞지 않아요. 다시 입력해 주세요.",
        "en": "That code is not right. Please try again.",
        "ja": "認証番号が違います。もう一度入力してください。",
    },
    "too_many_attempts": {
        "ko": "인증번호를 여러 번 잘못 입력했어요. 새 인증번호를 받아 주세요.",
        "en": "Too many wrong codes. Please request a new one.",
        "ja": "認証番号の誤入力が多すぎます。新しい番号を受け取ってください。",
    },
    "enter_code": {
        "ko": "문자로 받은 인증번호를 입력해 주세요.",
        "en": "Please enter the code from the text message.",
        "ja": "SMSで届いた認証番号を入力してください。",
    },
    "choose_option": {
        "ko": "선택지를 하나 골라 주세요.",
        "en": "Please choose an option.",
        "ja": "選択肢を1つ選んでください。",
    },
    "not_open": {
        "ko": "지금은 투표 기간이 아니에요.",
        "en": "This poll is not open for voting now.",
        "ja": "現在は投票期間ではありません。",
    },
    "not_on_roll": {
        "ko": "이 번호는 이 투표의 참여 명부에 없어요.",
        "en": "This phone number is not on this poll's list of voters.",
        "ja": "この番号はこの投票の名簿にありません。",
    },
    "wrong_password": {
        "ko": "투표 비밀번호가 맞지 않아요.",
        "en": "The poll password is not right.",
        "ja": "投票パスワードが違います。",
    },
    "password_needed": {
        "ko": "투표 비밀번호를 입력해 주세요.",
        "en": "Please enter the poll password.",
        "ja": "投票パスワードを入力してください。",
    },
    "wrong_link": {
        "ko": "이 투표는 QR 코드 링크로만 참여할 수 있어요.",
        "en": "This poll can only be joined through its QR code link.",
        "ja": "この投票はQRコードのリンクからのみ参加できます。",
    },
    "outside_area": {
        "ko": "현재 위치가 투표 지역 밖이에요.",
        "en": "Your location is outside the poll's area.",
        "ja": "現在地が投票地域の外です。",
    },
    "location_needed": {
        "ko": "이 투표는 위치 확인이 필요해요. '내 위치 확인'을 눌러 주세요.",
        "en": "This poll needs your location. Press 'Share my location'.",
        "ja": "この投票には位置の確認が必要です。「現在地を確認」を押してください。",
    },
    "bad_option": {
        "ko": "이 투표에 없는 선택지예요.",
        "en": "That option is not on this ballot.",
        "ja": "その選択肢はこの投票にありません。",
    },
    "new_code_needed": {
        "ko": "인증번호는 한 번만 쓸 수 있어요. 다시 투표하려면 새 인증번호를 받아 주세요.",
        "en": "Each code works only once: request a new code to try again.",
        "ja": "認証番号は1回のみ有効です。もう一度投票するには新しい番号を受け取ってください。",
    },
    "csrf": {
        "ko": "페이지가 만료됐어요. 투표 페이지를 새로 고친 뒤 다시 시도해 주세요.",
        "en": "This page has expired. Reload the poll page and try again.",
        "ja": "ページの有効期限が切れました。投票ページを再読み込みしてもう一度お試しください。",
    },
    "no_poll": {"ko": "투표를 찾을 수 없어요.", "en": "No such poll.", "ja": "投票が見つかりません。"},
    "seconds": {"ko": "{n}초", "en": "{n} seconds", "ja": "{n}秒"},
    "minutes": {"ko": "{n}분", "en": "{n} minutes", "ja": "{n}分"},
    "accepted": {
        "ko": "투표가 접수됐어요. 감사합니다!",
        "en": "Your vote has been counted. Thank you!",
        "ja": "投票を受け付けました。ありがとうございました！",
    },
    "already_voted": {
        "ko": "이 번호로 이미 투표했어요. 처음 투표의 영수증을 보여 드려요.",
        "en": "You have already voted with this number. Here is the receipt of that vote.",
        "ja": "この番号ではすでに投票済みです。最初の投票の受領証です。",
    },
    "receipt_title": {"ko": "투표 영수증", "en": "Vote receipt", "ja": "投票受領証"},
    "receipt_intro": {
        "ko": "영수증 번호를 보관하세요. 내 표가 공개 장부에 들어 있는지 언제든 확인할 수 있어요.",
        "en": "Keep the receipt number: with it you can check at any time that your ballot is in the public log.",
        "ja": "受領番号を保管してください。自分の票が公開台帳にあることをいつでも確認できます。",
    },
    "receipt_id": {"ko": "영수증 번호", "en": "Receipt", "ja": "受領番号"},
    "leaf_index": {"ko": "장부 순번", "en": "Position in the log", "ja": "台帳の順番"},
    "checkpoint": {"ko": "서명된 체크포인트", "en": "Signed checkpoint", "ja": "署名付きチェックポイント"},
    "tree_size": {"ko": "장부 크기", "en": "Log size", "ja": "台帳のサイズ"},
    "root_hash": {"ko": "루트 해시", "en": "Root hash", "ja": "ルートハッシュ"},
    "signed_at": {"ko": "서명 시각 (UTC)", "en": "Signed at (UTC)", "ja": "署名時刻（UTC）"},
    "signature": {
        "ko": "서명된 노트 (C2SP, Ed25519)",
        "en": "Signed note (C2SP, Ed25519)",
        "ja": "署名付きノート（C2SP、Ed25519）",
    },
    "key_link": {
        "ko": "서울시 검증 키 (JSON): 시가 공지한 키와 같은지 확인하세요",
        "en": "The city's verifier key (JSON): check it matches the one the city publishes",
        "ja": "ソウル市の検証鍵（JSON）：市が公表した鍵と同じか確認してください",
    },
    "proof_link": {"ko": "포함 증명 (JSON)", "en": "Inclusion proof (JSON)", "ja": "包含証明（JSON）"},
    "checkpoint_link": {
        "ko": "최신 체크포인트 (JSON)",
        "en": "Latest checkpoint (JSON)",
        "ja": "最新チェックポイント（JSON）",
    },
    "no_receipt": {
        "ko": "영수증을 만들지 못했어요. 잠시 후 포함 증명 링크로 확인해 주세요.",
        "en": "No receipt could be shown. Please check again later.",
        "ja": "受領証を表示できませんでした。しばらくしてから確認してください。",
    },
    "results_title": {"ko": "투표 결과", "en": "Results", "ja": "投票結果"},
    "results_hidden": {
        "ko": "결과는 투표가 마감되면 공개돼요 ({when} 마감).",
        "en": "Results are shown when the poll closes ({when}).",
        "ja": "結果は投票の締切後に公開されます（{when}締切）。",
    },
    "interim": {
        "ko": "중간 결과예요. 투표가 아직 진행 중이에요.",
        "en": "Interim results: voting is still open.",
        "ja": "中間結果です。投票はまだ実施中です。",
    },
    "final": {"ko": "최종 결과", "en": "Final results", "ja": "最終結果"},
    "total_votes": {"ko": "총 {n}표", "en": "{n} votes in total", "ja": "合計{n}票"},
    "votes_pct": {"ko": "{n}표 ({pct}%)", "en": "{n} votes ({pct}%)", "ja": "{n}票（{pct}%）"},
    "export_link": {
        "ko": "전체 투표 장부 내려받기 (JSON)",
        "en": "Download the whole vote log (JSON)",
        "ja": "投票台帳の全件をダウンロード（JSON）",
    },
    "verify_hint": {
        "ko": "누구나 python -m civic.ledger verify 로 장부를 검증할 수 있어요.",
        "en": "Anyone can check the log with python -m civic.ledger verify.",
        "ja": "誰でも python -m civic.ledger verify で台帳を検証できます。",
    },
}


def text(key: str, lang: str, **values: object) -> str:
    texts = TEXTS[key]
    return texts.get(lang, texts[DEFAULT_LANGUAGE]).format(**values)


def wait_text(seconds: int, lang: str) -> str:
    """How long until the next code may be sent: seconds under two minutes, else whole minutes."""
    if seconds < 120:
        return text("seconds", lang, n=seconds)
    return text("minutes", lang, n=math.ceil(seconds / 60))
