/*
 * 서울 민원 챗봇 / Seoul Civic Assistant — citizen web chat.
 *
 * Plain ES2020, no dependencies. Everything the server sends is rendered with
 * textContent / text nodes, never parsed as HTML (replies may echo citizen text).
 *
 * API (same origin, conversation kept in an HttpOnly cookie):
 *   POST /chat/api/messages   {client_message_id, text, payload?, latitude?, longitude?, attachment_ids?}
 *   GET  /chat/api/messages?after=<last id>
 *   POST /chat/api/photos     multipart "file"
 *   GET  /chat/api/phone             → {verified, last4}
 *   POST /chat/api/phone       {phone}        → {sent, last4}       (an SMS code; never through the chat)
 *   POST /chat/api/phone/verify {phone, code} → {verified, last4}
 */
(() => {
  "use strict";

  // ---------------------------------------------------------------- settings
  const API_BASE = "/chat/api";
  const MAX_CHARS = 2000;
  const WARN_CHARS = 1800;
  const MAX_PHOTO_BYTES = 10 * 1024 * 1024;
  const PHOTO_TYPES = ["image/jpeg", "image/png", "image/webp"];
  const POLL_MS = 4000;
  const POLL_HIDDEN_MS = 30000;
  const POLL_MAX_BACKOFF_MS = 60000;
  const SEND_TIMEOUT_MS = 30000;
  const UPLOAD_TIMEOUT_MS = 120000;
  const POLL_TIMEOUT_MS = 15000;
  const GEO_OPTIONS = { enableHighAccuracy: true, timeout: 10000, maximumAge: 0 };
  const ROLES = ["citizen", "bot", "operator", "system"];

  // ------------------------------------------------------------ dictionary
  const I18N = {
    ko: {
      docTitle: "서울 민원 챗봇",
      title: "서울 민원 챗봇",
      subtitle: "생활 불편 신고 · 민원 처리 조회 · 120 상담",
      logLabel: "대화 내용",
      inputLabel: "메시지",
      placeholder: "메시지를 입력하세요",
      send: "보내기",
      location: "현재 위치 보내기",
      photo: "사진 보내기",
      phone: "내 번호 인증",
      phoneVerifiedButton: "번호 인증됨 (끝자리 {last4})",
      phoneTitle: "📞 내 번호 인증",
      phoneIntro: "채팅에서 투표하려면 휴대전화 번호를 인증해 주세요. 번호는 본인 확인에만 쓰이고 대화 기록에는 남지 않아요.",
      phoneVerifiedState: "✓ 끝자리 {last4} 번호로 인증되어 있어요. 다른 번호로 바꾸려면 아래에서 다시 인증해 주세요.",
      phoneLabel: "휴대전화 번호",
      sendCode: "인증번호 받기",
      codeLabel: "인증번호 (6자리)",
      verifyCode: "확인",
      resend: "다시 받기",
      resendIn: "다시 받기 ({wait})",
      changeNumber: "번호 바꾸기",
      close: "닫기",
      sendingCode: "인증번호를 보내는 중…",
      codeSent: "끝자리 {last4} 번호로 인증번호를 보냈어요. 5분 안에 입력해 주세요.",
      verifying: "확인하는 중…",
      phoneVerified: "끝자리 {last4} 번호가 인증되었어요. 이제 이 채팅에서 투표할 수 있어요.",
      phoneMissing: "휴대전화 번호를 입력해 주세요.",
      waitSeconds: "{n}초",
      waitMinutes: "{n}분",
      err_invalid_phone: "휴대전화 번호를 확인해 주세요 (예: 010-1234-5678).",
      err_enter_code: "문자로 받은 6자리 인증번호를 입력해 주세요.",
      err_no_code: "먼저 인증번호를 받아 주세요 (인증번호는 한 번만 쓸 수 있어요).",
      err_expired: "인증번호가 만료됐어요. ‘다시 받기’를 눌러 새 인증번호를 받아 주세요.",
      err_wrong_code: "인증번호가 맞지 않아요. 다시 입력해 주세요.",
      err_too_many_attempts: "인증번호를 여러 번 잘못 입력했어요. ‘다시 받기’를 눌러 새 인증번호를 받아 주세요.",
      err_too_many_sends: "인증번호를 너무 자주 요청했어요. {wait} 후에 다시 받아 주세요.",
      err_ip_limited: "이 연결에서 인증번호 요청이 너무 많아요. 잠시 후 다시 시도해 주세요.",
      myLocation: "📍 내 위치",
      locating: "현재 위치를 확인하고 있어요…",
      geoDenied: "위치 권한이 거부되어 위치를 보낼 수 없어요. 브라우저 설정에서 이 사이트의 위치 권한을 허용하거나, 주소나 주변 건물 이름을 직접 입력해 주세요.",
      geoUnavailable: "현재 위치를 확인할 수 없어요. 기기의 위치 서비스(GPS)가 켜져 있는지 확인하거나, 주소를 직접 입력해 주세요.",
      geoTimeout: "위치 확인이 10초 안에 끝나지 않았어요. 잠시 후 다시 시도하거나, 주소를 직접 입력해 주세요.",
      geoUnsupported: "이 브라우저에서는 위치 공유를 사용할 수 없어요. 주소를 직접 입력해 주세요.",
      geoInsecure: "보안 연결(HTTPS)이 아니어서 위치를 공유할 수 없어요. 주소를 직접 입력해 주세요.",
      photoType: "JPEG, PNG, WebP 형식의 사진만 보낼 수 있어요.",
      photoTooBig: "사진이 너무 커요({size}MB). 10MB 이하의 사진을 보내 주세요.",
      photoEmpty: "빈 파일이라 보낼 수 없어요. 다른 사진을 골라 주세요.",
      uploading: "사진을 올리는 중…",
      photoAlt: "보낸 사진",
      photoSent: "📷 사진",
      notDelivered: "전송되지 않음",
      notSent: "보내지 못함",
      retry: "다시 보내기",
      typing: "답변을 준비하고 있어요…",
      networkError: "네트워크 연결에 문제가 있어 메시지를 보내지 못했어요. 연결을 확인한 뒤 ‘다시 보내기’를 눌러 주세요.",
      timeout: "응답이 너무 늦어지고 있어요. ‘다시 보내기’를 눌러 주세요.",
      unavailable: "지금은 서비스에 연결할 수 없어요. 잠시 후 ‘다시 보내기’를 눌러 주세요.",
      sessionExpired: "대화 세션이 만료되었어요. 페이지를 새로 고친 뒤 다시 시도해 주세요.",
      tooLarge: "보내려는 내용이 너무 커요.",
      invalid: "보낼 수 없는 내용이에요. 내용을 확인해 주세요.",
      rateLimited: "메시지를 너무 빨리 보내고 있어요. 잠시 후 다시 시도해 주세요.",
      requestFailed: "요청을 처리하지 못했어요. 잠시 후 다시 시도해 주세요.",
      offline: "인터넷에 연결되어 있지 않아요. 연결되면 자동으로 다시 이어집니다.",
      connectionProblem: "서버와 연결이 원활하지 않아요. 다시 연결하는 중…",
      newMessages: "새 메시지 ↓",
      counterNear: "{left}자 남았어요.",
      counterOver: "최대 {max}자까지 보낼 수 있어요. {over}자를 줄여 주세요.",
      senderBot: "챗봇",
      senderCitizen: "나",
      senderOperator: "120 상담사",
      senderSystem: "안내",
      replyOptions: "답변 선택",
      welcome:
        "안녕하세요! 서울 민원 챗봇입니다. 이런 일을 도와드려요.\n" +
        "• 생활 불편 신고 — 불법 주정차, 쓰레기 무단 투기, 고장 난 가로등 등\n" +
        "• 민원 처리 상황 조회 — 접수번호(예: SR-2026-000123)를 알려 주세요\n" +
        "• 120 다산콜센터 상담사와 대화 — ‘상담사 연결’이라고 말씀해 주세요\n" +
        "📍 버튼으로 위치를, 📷 버튼으로 사진을 보낼 수 있어요. 📞 버튼으로 휴대전화 번호를 인증하면 이 채팅에서 투표할 수 있어요.\n" +
        "긴급 상황은 112(경찰)·119(화재·구급)로 바로 전화해 주세요.",
    },
    ja: {
      docTitle: "ソウル市民相談チャットボット",
      title: "ソウル市民相談チャットボット",
      subtitle: "生活の不便の通報・処理状況の確認・120相談",
      logLabel: "会話",
      inputLabel: "メッセージ",
      placeholder: "メッセージを入力",
      send: "送信",
      location: "現在地を送る",
      photo: "写真を送る",
      phone: "番号を認証",
      phoneVerifiedButton: "番号認証済み（末尾{last4}）",
      phoneTitle: "📞 番号を認証",
      phoneIntro: "チャットで投票するには携帯電話番号を認証してください。番号は本人確認にのみ使われ、会話の記録には残りません。",
      phoneVerifiedState: "✓ 末尾{last4}の番号で認証済みです。別の番号に変えるには、下で認証し直してください。",
      phoneLabel: "携帯電話番号",
      sendCode: "認証番号を受け取る",
      codeLabel: "認証番号（6桁）",
      verifyCode: "認証する",
      resend: "再送信",
      resendIn: "再送信（{wait}）",
      changeNumber: "番号を変更",
      close: "閉じる",
      sendingCode: "認証番号を送信しています…",
      codeSent: "末尾{last4}の番号に認証番号を送りました。5分以内に入力してください。",
      verifying: "確認しています…",
      phoneVerified: "末尾{last4}の番号を認証しました。このチャットで投票できます。",
      phoneMissing: "携帯電話番号を入力してください。",
      waitSeconds: "{n}秒",
      waitMinutes: "{n}分",
      err_invalid_phone: "携帯電話番号を確認してください（例：010-1234-5678）。",
      err_enter_code: "SMSで届いた6桁の認証番号を入力してください。",
      err_no_code: "先に認証番号を受け取ってください（認証番号は1回のみ有効です）。",
      err_expired: "認証番号の有効期限が切れました。「再送信」を押して新しい番号を受け取ってください。",
      err_wrong_code: "認証番号が違います。もう一度入力してください。",
      err_too_many_attempts: "認証番号の誤入力が多すぎます。「再送信」を押して新しい番号を受け取ってください。",
      err_too_many_sends: "認証番号の要求が多すぎます。{wait}後にもう一度お試しください。",
      err_ip_limited: "この接続からの認証番号の要求が多すぎます。しばらくしてからお試しください。",
      myLocation: "📍 現在地",
      locating: "現在地を確認しています…",
      geoDenied: "位置情報の利用が許可されていないため、現在地を送れません。ブラウザの設定でこのサイトの位置情報を許可するか、住所や近くの建物名を入力してください。",
      geoUnavailable: "現在地を取得できませんでした。端末の位置情報サービス（GPS）がオンになっているか確認するか、住所を入力してください。",
      geoTimeout: "10秒以内に現在地を取得できませんでした。しばらくしてからもう一度試すか、住所を入力してください。",
      geoUnsupported: "このブラウザでは位置情報を共有できません。住所を入力してください。",
      geoInsecure: "安全な接続（HTTPS）ではないため、位置情報を共有できません。住所を入力してください。",
      photoType: "送信できるのはJPEG・PNG・WebP形式の写真のみです。",
      photoTooBig: "写真のサイズが大きすぎます（{size}MB）。10MB以下の写真を送ってください。",
      photoEmpty: "空のファイルは送信できません。別の写真を選んでください。",
      uploading: "写真をアップロード中…",
      photoAlt: "送信した写真",
      photoSent: "📷 写真",
      notDelivered: "未送信",
      notSent: "送信できませんでした",
      retry: "再送信",
      typing: "返信を準備しています…",
      networkError: "ネットワークの問題でメッセージを送信できませんでした。接続を確認してから「再送信」を押してください。",
      timeout: "応答に時間がかかっています。「再送信」を押してください。",
      unavailable: "現在サービスに接続できません。しばらくしてから「再送信」を押してください。",
      sessionExpired: "セッションの有効期限が切れました。ページを再読み込みしてから、もう一度お試しください。",
      tooLarge: "送信内容が大きすぎます。",
      invalid: "この内容は送信できません。内容を確認してください。",
      rateLimited: "送信の間隔が短すぎます。しばらくしてからもう一度お試しください。",
      requestFailed: "リクエストを処理できませんでした。しばらくしてからもう一度お試しください。",
      offline: "インターネットに接続されていません。接続が戻ると自動的に再開します。",
      connectionProblem: "サーバーとの接続が不安定です。再接続しています…",
      newMessages: "新しいメッセージ ↓",
      counterNear: "残り{left}文字です。",
      counterOver: "送信できるのは最大{max}文字です。{over}文字減らしてください。",
      senderBot: "チャットボット",
      senderCitizen: "あなた",
      senderOperator: "120 相談員",
      senderSystem: "お知らせ",
      replyOptions: "返答の選択肢",
      welcome:
        "こんにちは！ソウル市の市民相談チャットボットです。次のことをお手伝いします。\n" +
        "• 生活の不便の通報 — 違法駐車、ごみの不法投棄、街灯の故障など\n" +
        "• 処理状況の確認 — 受付番号（例：SR-2026-000123）をお知らせください\n" +
        "• 120茶山コールセンターの相談員と話す — 「相談員につないで」と入力してください\n" +
        "📍ボタンで現在地を、📷ボタンで写真を送れます。📞ボタンで携帯電話番号を認証すると、このチャットで投票できます。\n" +
        "緊急の場合は112（警察）・119（火災・救急）へすぐにお電話ください。",
    },
    en: {
      docTitle: "Seoul Civic Assistant",
      title: "Seoul Civic Assistant",
      subtitle: "Report a problem · Track your case · Talk to 120",
      logLabel: "Conversation",
      inputLabel: "Message",
      placeholder: "Type a message",
      send: "Send",
      location: "Share my location",
      photo: "Send a photo",
      phone: "Verify my number",
      phoneVerifiedButton: "Number verified (ending {last4})",
      phoneTitle: "📞 Verify my number",
      phoneIntro: "Verify your mobile number to vote in this chat. It is used only to check that it's you and is not kept in the conversation.",
      phoneVerifiedState: "✓ Verified with the number ending {last4}. To use another number, verify it below.",
      phoneLabel: "Mobile phone number",
      sendCode: "Send code",
      codeLabel: "Code (6 digits)",
      verifyCode: "Verify",
      resend: "Send again",
      resendIn: "Send again ({wait})",
      changeNumber: "Change number",
      close: "Close",
      sendingCode: "Sending the code…",
      codeSent: "We sent a code to the number ending {last4}. Enter it within 5 minutes.",
      verifying: "Checking…",
      phoneVerified: "The number ending {last4} is verified. You can now vote in this chat.",
      phoneMissing: "Please enter your mobile phone number.",
      waitSeconds: "{n} s",
      waitMinutes: "{n} min",
      err_invalid_phone: "Please check the phone number (e.g. 010-1234-5678).",
      err_enter_code: "Please enter the 6-digit code from the text message.",
      err_no_code: "Please request a code first (each code works only once).",
      err_expired: "The code has expired. Tap “Send again” for a new one.",
      err_wrong_code: "That code is not right. Please try again.",
      err_too_many_attempts: "Too many wrong codes. Tap “Send again” for a new one.",
      err_too_many_sends: "Too many code requests for this number. Please try again in {wait}.",
      err_ip_limited: "Too many code requests from this connection. Please try again later.",
      myLocation: "📍 My location",
      locating: "Finding your location…",
      geoDenied: "Location permission was denied, so your location can't be shared. Allow location for this site in your browser settings, or type the address or a nearby landmark instead.",
      geoUnavailable: "Your location couldn't be determined. Check that location services (GPS) are on, or type the address instead.",
      geoTimeout: "Finding your location took longer than 10 seconds. Try again in a moment, or type the address instead.",
      geoUnsupported: "This browser can't share your location. Please type the address instead.",
      geoInsecure: "Location can only be shared over a secure (HTTPS) connection. Please type the address instead.",
      photoType: "Only JPEG, PNG or WebP photos can be sent.",
      photoTooBig: "This photo is too large ({size} MB). Please send a photo of 10 MB or less.",
      photoEmpty: "That file is empty. Please choose another photo.",
      uploading: "Uploading photo…",
      photoAlt: "Photo you sent",
      photoSent: "📷 Photo",
      notDelivered: "Not delivered",
      notSent: "Not sent",
      retry: "Retry",
      typing: "Preparing a reply…",
      networkError: "Your message couldn't be sent because of a network problem. Check your connection, then tap “Retry”.",
      timeout: "The reply is taking too long. Please tap “Retry”.",
      unavailable: "The service is unavailable right now. Please tap “Retry” in a moment.",
      sessionExpired: "Your session has expired. Please reload the page and try again.",
      tooLarge: "What you tried to send is too large.",
      invalid: "This can't be sent. Please check your message.",
      rateLimited: "You're sending messages too quickly. Please wait a moment and try again.",
      requestFailed: "Your request couldn't be processed. Please try again in a moment.",
      offline: "You're offline. The chat will resume when you're back online.",
      connectionProblem: "Trouble reaching the server. Reconnecting…",
      newMessages: "New messages ↓",
      counterNear: "{left} characters left.",
      counterOver: "Messages can be at most {max} characters. Please remove {over}.",
      senderBot: "Chatbot",
      senderCitizen: "You",
      senderOperator: "120 operator",
      senderSystem: "Notice",
      replyOptions: "Reply options",
      welcome:
        "Hello! I'm the Seoul Civic Assistant. I can help you:\n" +
        "• Report a problem — illegal parking, dumped garbage, a broken streetlight and more\n" +
        "• Check a case by its number (e.g. SR-2026-000123)\n" +
        "• Talk to a 120 Dasan Call Center operator — just say “talk to an operator”\n" +
        "Use 📍 to share your location and 📷 to send a photo. Verify your mobile number with 📞 to vote in this chat.\n" +
        "In an emergency, call 112 (police) or 119 (fire/ambulance) right away.",
    },
  };

  function pickLang() {
    const tag = String(navigator.language || "en").toLowerCase();
    if (tag.startsWith("ko")) return "ko";
    if (tag.startsWith("ja")) return "ja";
    return "en";
  }

  const LANG = pickLang();
  const DICT = I18N[LANG];
  const LOCALE = LANG === "ko" ? "ko-KR" : LANG === "ja" ? "ja-JP" : navigator.language || "en";

  function t(key, vars) {
    let s = DICT[key] != null ? DICT[key] : I18N.en[key] != null ? I18N.en[key] : key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, name) => (vars[name] != null ? String(vars[name]) : m));
    return s;
  }

  function fmtNumber(n) {
    try {
      return Number(n).toLocaleString(LOCALE);
    } catch (e) {
      return String(n);
    }
  }

  // ------------------------------------------------------------- DOM refs
  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const scroller = $("scroller");
  const typing = $("typing");
  const jumpButton = $("jump-button");
  const banner = $("status-banner");
  const form = $("composer");
  const input = $("composer-input");
  const sendButton = $("send-button");
  const locationButton = $("location-button");
  const photoInput = $("photo-input");
  const photoLabel = $("photo-label");
  const counter = $("char-counter");
  const charHint = $("char-hint");
  const announcer = $("announcer");
  const phoneButton = $("phone-button");
  const phonePanel = $("phone-panel");
  const phoneClose = $("phone-close");
  const phoneVerifiedNote = $("phone-verified");
  const phoneForm = $("phone-form");
  const phoneInput = $("phone-input");
  const phoneSend = $("phone-send");
  const codeForm = $("code-form");
  const codeInput = $("code-input");
  const codeVerify = $("code-verify");
  const codeResend = $("code-resend");
  const codeChange = $("code-change");
  const phoneStatus = $("phone-status");
  if (!log || !input || !sendButton || !form) return;

  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const CSRF_TOKEN = csrfMeta ? csrfMeta.getAttribute("content") || "" : "";

  const finePointer = () => !!(window.matchMedia && window.matchMedia("(pointer: fine)").matches);

  // ----------------------------------------------------------------- state
  let busy = false; // a send / upload is in flight
  let locating = false; // waiting for the geolocation API
  let lastId = 0; // highest server message id shown
  let sendEpoch = 0; // bumped at each send start/end: polls that overlap a send are discarded
  let historyLoaded = false;
  let pollTimer = 0;
  let pollInFlight = false;
  let pollFailures = 0;
  let unseen = 0;
  let counterState = "ok";
  const shownIds = new Set(); // server ids already rendered
  const outbox = []; // jobs waiting for the current send to finish
  const unconfirmed = []; // local citizen bubbles whose server id is not known yet

  // ---------------------------------------------------------------- helpers
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value == null || value === false) continue;
        if (key === "class") node.className = value;
        else if (key === "text") node.textContent = value;
        else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, value === true ? "" : String(value));
      }
    }
    for (const child of children.flat()) {
      if (child != null && child !== false) node.append(child); // strings become text nodes
    }
    return node;
  }

  function uuidv4() {
    const c = globalThis.crypto;
    if (c && typeof c.randomUUID === "function") {
      try {
        return c.randomUUID();
      } catch (e) {
        /* insecure context: fall through */
      }
    }
    const b = new Uint8Array(16);
    if (c && typeof c.getRandomValues === "function") c.getRandomValues(b);
    else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  // Code points, like Python's len() on the server.
  const countChars = (s) => Array.from(s).length;

  function announce(text) {
    if (!announcer) return;
    announcer.textContent = "";
    window.setTimeout(() => {
      announcer.textContent = text;
    }, 50);
  }

  function formatTime(value) {
    const d = value ? new Date(value) : new Date();
    if (Number.isNaN(d.getTime())) return "";
    const now = new Date();
    const sameDay = d.toDateString() === now.toDateString();
    const opts = sameDay
      ? { hour: "numeric", minute: "2-digit" }
      : { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" };
    try {
      return new Intl.DateTimeFormat(LOCALE, opts).format(d);
    } catch (e) {
      return d.toLocaleTimeString();
    }
  }

  function safeHttpUrl(raw) {
    if (typeof raw !== "string" || !raw.trim()) return null;
    try {
      const u = new URL(raw, window.location.href);
      return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  // Text with http(s) links turned into <a> elements — built node by node, never via HTML.
  const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;
  function appendText(parent, text, linkify) {
    if (!linkify) {
      parent.append(text);
      return;
    }
    let last = 0;
    for (const m of text.matchAll(URL_RE)) {
      let url = m[0];
      const trail = /[)\].,!?;:'"」』。、，]+$/.exec(url);
      if (trail) url = url.slice(0, url.length - trail[0].length);
      const href = safeHttpUrl(url);
      if (!href || !url) continue;
      if (m.index > last) parent.append(text.slice(last, m.index));
      parent.append(h("a", { href, target: "_blank", rel: "noopener noreferrer nofollow", text: url }));
      last = m.index + url.length;
    }
    if (last < text.length) parent.append(text.slice(last));
  }

  // ------------------------------------------------------------- scrolling
  function nearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
  }

  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
    if (jumpButton) jumpButton.hidden = true;
  }

  function appendToLog(node, force) {
    const stick = force || !historyLoaded || nearBottom();
    log.append(node);
    if (stick) scrollToBottom();
    else if (jumpButton) jumpButton.hidden = false;
    for (const img of node.querySelectorAll("img")) {
      img.addEventListener("load", () => {
        if (stick || nearBottom()) scrollToBottom();
      });
    }
    if (historyLoaded && document.hidden && !node.classList.contains("msg-citizen")) {
      unseen += 1;
      document.title = `(${unseen}) ${t("docTitle")}`;
    }
  }

  // ---------------------------------------------------------------- bubbles
  function roleOf(m) {
    const sender = String((m && m.sender) || "").toLowerCase();
    if (ROLES.includes(sender)) return sender;
    return m && m.direction === "in" ? "citizen" : "bot";
  }

  const SENDER_KEY = { citizen: "senderCitizen", bot: "senderBot", operator: "senderOperator", system: "senderSystem" };

  /**
   * Builds a bubble. The sender label and the time are CSS-generated from data-*
   * attributes, so the element's textContent is just the message (and its buttons).
   */
  function createBubble({ role, text, id, createdAt, buttons, photos, extraClass }) {
    const msg = h("div", {
      class: `msg msg-${role}${extraClass ? " " + extraClass : ""}`,
      "data-id": id != null ? String(id) : null,
      "data-label": t(SENDER_KEY[role]),
    });
    const bubble = h("div", { class: "msg-bubble" });
    if (photos && photos.length) {
      const box = h("div", { class: "msg-photos" });
      for (const url of photos) {
        const src = safeHttpUrl(url);
        if (src) box.append(h("img", { class: "msg-photo", src, alt: t("photoAlt"), decoding: "async" }));
      }
      if (box.childNodes.length) {
        bubble.append(box);
        msg.classList.add("msg-has-photo");
      }
    }
    if (text) {
      const body = h("div", { class: "msg-text" });
      appendText(body, text, role !== "citizen");
      bubble.append(body);
    }
    msg.append(bubble);
    const time = formatTime(createdAt);
    if (time && role !== "system") msg.append(h("div", { class: "msg-meta", "data-time": time }));
    if (Array.isArray(buttons) && buttons.length && role !== "citizen") {
      const group = renderButtons(buttons);
      if (group) msg.append(group);
    }
    return msg;
  }

  function renderButtons(buttons) {
    const group = h("div", { class: "reply-buttons", role: "group", "aria-label": t("replyOptions") });
    for (const b of buttons) {
      if (!b) continue;
      const title = String(b.title != null ? b.title : b.payload != null ? b.payload : "").trim();
      if (!title) continue;
      const payload = b.payload != null ? String(b.payload) : null;
      const btn = h("button", { type: "button", class: "reply-button", text: title });
      btn.addEventListener("click", (ev) => {
        if (busy || group.hasAttribute("data-used") || btn.disabled) return;
        btn.classList.add("is-chosen");
        btn.setAttribute("aria-pressed", "true");
        const keyboard = ev.detail === 0;
        sendMessage({ kind: "button", text: title, payload, chipGroup: group });
        if (keyboard || finePointer()) input.focus({ preventScroll: true });
      });
      group.append(btn);
    }
    if (!group.childNodes.length) return null;
    if (busy) for (const btn of group.querySelectorAll("button")) btn.disabled = true;
    return group;
  }

  function addSystem(text, isError) {
    const node = createBubble({ role: "system", text, extraClass: `msg-local${isError ? " is-error" : ""}` });
    appendToLog(node, true);
    return node;
  }

  function showWelcome() {
    const node = createBubble({ role: "bot", text: t("welcome"), extraClass: "msg-welcome msg-local" });
    node.setAttribute("data-local", "welcome");
    log.append(node);
  }

  // Buttons belong to the latest question only: once the citizen says something,
  // every button group before that point is spent.
  function supersedeChips(before) {
    const spent = [];
    for (const group of log.querySelectorAll(".reply-buttons:not([data-used])")) {
      if (before && !(group.compareDocumentPosition(before) & Node.DOCUMENT_POSITION_FOLLOWING)) continue;
      group.setAttribute("data-used", "");
      spent.push(group);
    }
    refreshControls();
    return spent;
  }

  function restoreChips(groups, except) {
    for (const group of groups || []) {
      if (group === except || !group.isConnected) continue;
      group.removeAttribute("data-used");
      for (const btn of group.querySelectorAll(".reply-button.is-chosen")) {
        btn.classList.remove("is-chosen");
        btn.removeAttribute("aria-pressed");
      }
    }
    refreshControls();
  }

  // ------------------------------------------------------- server messages
  const idKey = (id) => (id == null || id === "" || Number(id) === 0 ? null : String(id));

  function bumpLastId(id) {
    const n = Number(id);
    if (Number.isFinite(n) && n > lastId) lastId = n;
  }

  function photosOf(m) {
    const out = [];
    const list = Array.isArray(m.attachments) ? m.attachments : [];
    for (const a of list) {
      if (typeof a === "string") out.push(a);
      else if (a && (a.thumbnail_url || a.url)) out.push(a.thumbnail_url || a.url);
    }
    if (typeof m.thumbnail_url === "string") out.push(m.thumbnail_url);
    if (!out.length && Array.isArray(m.attachment_ids)) {
      for (const id of m.attachment_ids) {
        if (id != null && id !== "") out.push(`${API_BASE}/photos/${encodeURIComponent(String(id))}`);
      }
    }
    return out;
  }

  const norm = (s) => {
    const str = String(s == null ? "" : s);
    return (typeof str.normalize === "function" ? str.normalize("NFC") : str).replace(/\s+/g, " ").trim();
  };

  // A citizen message coming back from the server that we already show locally.
  function adoptLocal(m) {
    let idx = -1;
    if (m.client_message_id) idx = unconfirmed.findIndex((j) => j.cmid === m.client_message_id);
    if (idx < 0) idx = unconfirmed.findIndex((j) => j.bubble && !j.inFlight && norm(j.text) === norm(m.text));
    if (idx < 0) return false;
    const job = unconfirmed[idx];
    unconfirmed.splice(idx, 1);
    job.bubble.setAttribute("data-id", String(m.id));
    // A "failed" bubble keeps its retry button: the server may have stored the message without
    // answering it (e.g. Rasa was down); a retry with the same client_message_id is safe either way.
    supersedeChips(job.bubble);
    return true;
  }

  function ingest(messages, fromSend) {
    const list = (Array.isArray(messages) ? messages : []).filter((m) => m && typeof m === "object");
    list.sort((a, b) => (Number(a.id) || 0) - (Number(b.id) || 0));
    for (const m of list) {
      const key = idKey(m.id);
      if (key && shownIds.has(key)) continue;
      if (key) shownIds.add(key);
      bumpLastId(m.id);
      const role = roleOf(m);
      if (role === "citizen") {
        if (!fromSend && adoptLocal(m)) continue;
        supersedeChips(null);
      }
      let text = typeof m.text === "string" ? m.text : m.text == null ? "" : String(m.text);
      const photos = photosOf(m);
      if (!text && !photos.length && !(Array.isArray(m.buttons) && m.buttons.length)) {
        if (role !== "citizen") continue;
        text = t("photoSent"); // an attachment-only message whose thumbnail the server did not list
      }
      appendToLog(
        createBubble({ role, text, id: m.id, createdAt: m.created_at, buttons: m.buttons, photos }),
        role === "citizen"
      );
    }
  }

  // ------------------------------------------------------------------ HTTP
  async function request(url, { method = "GET", json, formData, timeout = SEND_TIMEOUT_MS } = {}) {
    const headers = { Accept: "application/json" };
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (formData) {
      body = formData; // the browser sets the multipart boundary
    }
    if (method !== "GET") headers["X-CSRF-Token"] = CSRF_TOKEN;
    const ctrl = typeof AbortController === "function" ? new AbortController() : null;
    const timer = ctrl ? window.setTimeout(() => ctrl.abort(), timeout) : 0;
    try {
      const res = await fetch(url, {
        method,
        headers,
        body,
        credentials: "same-origin",
        cache: "no-store",
        signal: ctrl ? ctrl.signal : undefined,
      });
      let data = null;
      try {
        data = await res.json();
      } catch (e) {
        data = null;
      }
      return { ok: res.ok, status: res.status, data, network: false, retryAfter: res.headers.get("Retry-After") };
    } catch (e) {
      return { ok: false, status: 0, data: null, network: true, timedOut: !!(ctrl && ctrl.signal.aborted) };
    } finally {
      if (timer) window.clearTimeout(timer);
    }
  }

  function serverMessage(res) {
    const d = res && res.data;
    // Only "message" is meant for citizens; FastAPI's "detail" is developer text (often English).
    if (d && typeof d.message === "string" && d.message.trim()) return d.message.trim();
    return null;
  }

  // ------------------------------------------------------------------- send
  function setBusy(value) {
    busy = value;
    form.setAttribute("aria-busy", value ? "true" : "false");
    refreshControls();
  }

  function refreshControls() {
    const n = countChars(input.value);
    sendButton.disabled = busy || !input.value.trim() || n > MAX_CHARS;
    if (locationButton) locationButton.disabled = busy || locating;
    if (photoInput) photoInput.disabled = busy;
    if (photoLabel) photoLabel.classList.toggle("is-disabled", busy);
    for (const group of log.querySelectorAll(".reply-buttons")) {
      const used = group.hasAttribute("data-used");
      for (const btn of group.querySelectorAll(".reply-button")) btn.disabled = busy || used;
    }
    for (const btn of log.querySelectorAll(".retry-button")) btn.disabled = busy;
  }

  function showTyping(on) {
    if (!typing) return;
    const stick = nearBottom();
    typing.hidden = !on;
    if (on && stick) scrollToBottom();
  }

  function citizenBubble(job) {
    const node = createBubble({ role: "citizen", text: job.text, extraClass: "is-sending" });
    node.setAttribute("data-client-id", job.cmid);
    node.setAttribute("data-state", "sending");
    if (job.file) {
      const bubble = node.querySelector(".msg-bubble");
      const box = h("div", { class: "msg-photos" }, h("div", { class: "photo-placeholder", text: t("uploading") }));
      bubble.prepend(box);
      node.classList.add("msg-has-photo");
    }
    return node;
  }

  function showThumbnail(job, url) {
    const box = job.bubble.querySelector(".msg-photos");
    if (!box) return;
    const src = safeHttpUrl(url);
    box.textContent = "";
    if (src) {
      const img = h("img", { class: "msg-photo", src, alt: t("photoAlt"), decoding: "async" });
      img.addEventListener("load", () => {
        if (nearBottom() || busy) scrollToBottom();
      });
      box.append(img);
    } else {
      box.append(h("div", { class: "photo-placeholder", text: "📷" }));
    }
  }

  function setBubbleState(job, state) {
    const node = job.bubble;
    if (!node) return;
    job.state = state;
    node.setAttribute("data-state", state);
    node.classList.remove("is-sending", "is-failed", "is-rejected");
    if (state !== "sent") node.classList.add(`is-${state}`);
    const old = node.querySelector(".msg-status");
    const hadFocus = old && old.contains(document.activeElement);
    if (old) old.remove();
    if (state === "failed") {
      const retry = h("button", {
        type: "button",
        class: "retry-button",
        text: t("retry"),
        "aria-label": job.text ? `${t("retry")}: ${job.text.slice(0, 40)}` : t("retry"),
      });
      retry.disabled = busy;
      retry.addEventListener("click", (ev) => {
        if (busy || job.state !== "failed") return;
        const keyboard = ev.detail === 0;
        enqueue(job);
        if (keyboard || finePointer()) input.focus({ preventScroll: true });
      });
      node.append(h("div", { class: "msg-status" }, h("span", { class: "msg-status-text", text: `⚠ ${t("notDelivered")}` }), retry));
    } else if (state === "rejected") {
      node.append(h("div", { class: "msg-status" }, h("span", { class: "msg-status-text", text: t("notSent") })));
    }
    if (hadFocus && finePointer()) input.focus({ preventScroll: true });
  }

  function sendMessage(spec) {
    const job = {
      cmid: uuidv4(),
      kind: spec.kind || "text",
      text: spec.text || "",
      payload: spec.payload || null,
      latitude: spec.latitude,
      longitude: spec.longitude,
      file: spec.file || null,
      attachmentIds: [],
      chipGroup: spec.chipGroup || null,
      bubble: null,
      state: "queued",
      inFlight: false,
      spent: [],
    };
    // The clicked group is spent immediately, even if the send has to wait.
    if (job.chipGroup) {
      job.chipGroup.setAttribute("data-used", "");
      refreshControls();
    }
    enqueue(job);
    return job;
  }

  function enqueue(job) {
    if (!outbox.includes(job)) outbox.push(job);
    pump();
  }

  function pump() {
    // Wait for the history first: a reply id would otherwise move lastId past the unloaded history.
    if (busy || !historyLoaded || !outbox.length) return;
    deliver(outbox.shift());
  }

  function messageBody(job) {
    const body = { client_message_id: job.cmid, text: job.text };
    if (job.payload) body.payload = job.payload;
    if (Number.isFinite(job.latitude) && Number.isFinite(job.longitude)) {
      body.latitude = job.latitude;
      body.longitude = job.longitude;
    }
    if (job.attachmentIds.length) body.attachment_ids = job.attachmentIds.slice();
    return body;
  }

  async function deliver(job) {
    setBusy(true);
    sendEpoch += 1;
    job.inFlight = true;
    try {
      if (!job.bubble) {
        job.bubble = citizenBubble(job);
        appendToLog(job.bubble, true);
        unconfirmed.push(job);
      } else {
        setBubbleState(job, "sending");
        if (!job.bubble.hasAttribute("data-id") && !unconfirmed.includes(job)) unconfirmed.push(job);
      }
      job.spent = supersedeChips(job.bubble);
      if (job.chipGroup && !job.spent.includes(job.chipGroup)) job.spent.push(job.chipGroup);

      if (job.file && !job.attachmentIds.length) {
        announce(t("uploading"));
        const fd = new FormData();
        fd.append("file", job.file, job.file.name || "photo");
        const up = await request(`${API_BASE}/photos`, { method: "POST", formData: fd, timeout: UPLOAD_TIMEOUT_MS });
        const attachmentId = up.ok && up.data ? up.data.attachment_id : null;
        if (attachmentId == null || attachmentId === "") {
          fail(job, up.ok ? { ok: false, status: 500, data: up.data } : up);
          return;
        }
        job.attachmentIds = [String(attachmentId)];
        showThumbnail(job, up.data.thumbnail_url);
      }

      showTyping(true);
      const res = await request(`${API_BASE}/messages`, { method: "POST", json: messageBody(job) });
      if (!res.ok) {
        fail(job, res);
        return;
      }
      job.file = null; // keep memory low; the attachment id is enough from here on
      setBubbleState(job, "sent");
      const data = res.data || {};
      const ownId = data.message_id != null ? data.message_id : data.message && data.message.id != null ? data.message.id : null;
      const replies = Array.isArray(data.replies) ? data.replies : [];
      if (ownId != null || replies.some((r) => r && Number.isFinite(Number(r.id)))) {
        // The server has numbered past our message: a poll will never return it.
        const i = unconfirmed.indexOf(job);
        if (i >= 0) unconfirmed.splice(i, 1);
      }
      if (ownId != null) {
        job.bubble.setAttribute("data-id", String(ownId));
        shownIds.add(String(ownId));
        bumpLastId(ownId);
      }
      ingest(replies, true);
    } finally {
      job.inFlight = false;
      showTyping(false);
      sendEpoch += 1;
      setBusy(false);
      schedulePoll(POLL_MS);
      pump();
    }
  }

  // Shows the error notice. When the body carries the server's own (stored) notices in
  // "replies", those are shown with their ids so that polling does not show them twice.
  function showErrorNotice(res, fallbackText) {
    const replies = res.data && Array.isArray(res.data.replies) ? res.data.replies : [];
    let shown = 0;
    for (const r of replies) {
      if (!r || typeof r.text !== "string" || !r.text.trim()) continue;
      const key = idKey(r.id);
      shown += 1;
      if (key && shownIds.has(key)) continue;
      if (key) {
        shownIds.add(key);
        bumpLastId(r.id);
      }
      const role = r.sender && ROLES.includes(String(r.sender)) && r.sender !== "citizen" ? String(r.sender) : "system";
      appendToLog(createBubble({ role, text: r.text, id: key, buttons: r.buttons, extraClass: "is-error" }), true);
    }
    if (!shown) addSystem(serverMessage(res) || fallbackText, true);
  }

  function fail(job, res) {
    const status = res.status || 0;
    if (res.network || status === 408 || status === 409 || status >= 500) {
      // Possibly transient (409: the first attempt is still being processed): keep the
      // bubble and offer a retry with the same client_message_id.
      const fallback = res.network ? (res.timedOut ? "timeout" : navigator.onLine === false ? "offline" : "networkError") : "unavailable";
      showErrorNotice(res, t(fallback));
      setBubbleState(job, "failed");
      restoreChips(job.spent, job.chipGroup);
      return;
    }
    // Definitive refusal (413, 422, 429, 403…): the server did not keep the message.
    let fallback = "requestFailed";
    if (status === 413) fallback = job.file && !job.attachmentIds.length ? "photoTooBig" : "tooLarge";
    else if (status === 415) fallback = "photoType";
    else if (status === 422 || status === 400) fallback = "invalid";
    else if (status === 429) fallback = "rateLimited";
    else if (status === 401 || status === 403 || status === 419) fallback = "sessionExpired";
    showErrorNotice(res, t(fallback, { size: job.file ? (job.file.size / 1048576).toFixed(1) : "" }));
    setBubbleState(job, "rejected");
    const i = unconfirmed.indexOf(job);
    if (i >= 0) unconfirmed.splice(i, 1);
    restoreChips(job.spent, null);
    if (job.kind === "text" && job.text && !input.value) {
      input.value = job.text; // let the citizen edit and send again
      updateComposer();
    }
  }

  // ----------------------------------------------------------------- poll
  function schedulePoll(delay) {
    window.clearTimeout(pollTimer);
    const d = delay != null ? delay : document.hidden ? POLL_HIDDEN_MS : POLL_MS;
    pollTimer = window.setTimeout(poll, d);
  }

  function setBanner(text) {
    if (!banner) return;
    if (!text) {
      banner.hidden = true;
      banner.textContent = "";
    } else if (banner.textContent !== text) {
      banner.textContent = text;
      banner.hidden = false;
    }
  }

  async function poll() {
    if (pollInFlight) return;
    if (busy) {
      schedulePoll();
      return;
    }
    pollInFlight = true;
    const epoch = sendEpoch;
    let next = null;
    try {
      const res = await request(`${API_BASE}/messages?after=${encodeURIComponent(String(lastId))}`, {
        timeout: POLL_TIMEOUT_MS,
      });
      if (res.ok) {
        pollFailures = 0;
        if (navigator.onLine !== false) setBanner(null);
        // A send overlapped this poll: drop the result, the next poll (after=lastId) fetches it again.
        if (epoch === sendEpoch && !busy) {
          ingest(res.data && res.data.messages, false);
          if (!historyLoaded) finishHistory();
        }
      } else if (res.status === 401 || res.status === 403) {
        setBanner(serverMessage(res) || t("sessionExpired"));
        next = POLL_MAX_BACKOFF_MS;
        if (!historyLoaded) finishHistory();
      } else {
        pollFailures += 1;
        const retryAfter = Number(res.retryAfter);
        next = Number.isFinite(retryAfter) && retryAfter > 0
          ? Math.min(retryAfter * 1000, POLL_MAX_BACKOFF_MS)
          : Math.min(POLL_MS * 2 ** pollFailures, POLL_MAX_BACKOFF_MS);
        if (navigator.onLine === false) setBanner(t("offline"));
        else if (pollFailures >= 2) setBanner(t("connectionProblem"));
        if (!historyLoaded && (pollFailures >= 2 || outbox.length)) finishHistory();
      }
    } finally {
      pollInFlight = false;
      schedulePoll(next);
    }
  }

  function finishHistory() {
    historyLoaded = true;
    log.setAttribute("aria-busy", "false");
    scrollToBottom();
    pump();
  }

  // ------------------------------------------------------------- composer
  function autoGrow() {
    input.style.height = "auto";
    const max = Math.max(88, Math.min(180, Math.round(window.innerHeight * 0.3) || 180));
    input.style.height = `${Math.min(input.scrollHeight + 2, max)}px`;
  }

  function updateComposer() {
    const n = countChars(input.value);
    counter.textContent = `${fmtNumber(n)} / ${fmtNumber(MAX_CHARS)}`;
    const state = n > MAX_CHARS ? "over" : n >= WARN_CHARS ? "near" : "ok";
    counter.classList.toggle("is-warn", state === "near");
    counter.classList.toggle("is-over", state === "over");
    input.setAttribute("aria-invalid", state === "over" ? "true" : "false");
    if (state === "over") {
      charHint.textContent = t("counterOver", { max: fmtNumber(MAX_CHARS), over: fmtNumber(n - MAX_CHARS) });
    } else if (state === "near") {
      // Announce once when entering the zone; afterwards the visible counter is enough.
      if (counterState !== "near") charHint.textContent = t("counterNear", { left: fmtNumber(MAX_CHARS - n) });
    } else {
      charHint.textContent = "";
    }
    charHint.classList.toggle("is-over", state === "over");
    counterState = state;
    autoGrow();
    refreshControls();
  }

  function submitComposer() {
    const raw = input.value;
    if (!raw.trim() || busy) return;
    if (countChars(raw) > MAX_CHARS) {
      updateComposer();
      announce(t("counterOver", { max: fmtNumber(MAX_CHARS), over: fmtNumber(countChars(raw) - MAX_CHARS) }));
      return;
    }
    input.value = "";
    updateComposer();
    sendMessage({ kind: "text", text: raw.trim() });
  }

  let composing = false;
  input.addEventListener("compositionstart", () => {
    composing = true;
  });
  input.addEventListener("compositionend", () => {
    composing = false;
  });
  input.addEventListener("input", updateComposer);
  input.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter" || ev.shiftKey || ev.altKey) return;
    if (ev.isComposing || composing || ev.keyCode === 229) return; // IME (한글/日本語) still composing
    ev.preventDefault();
    submitComposer();
  });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    submitComposer();
    if (finePointer()) input.focus({ preventScroll: true });
  });
  // Keep the on-screen keyboard open when the send button is tapped.
  sendButton.addEventListener("mousedown", (ev) => {
    if (document.activeElement === input) ev.preventDefault();
  });

  // ------------------------------------------------------------- location
  function shareLocation() {
    if (busy || locating) return;
    if (!("geolocation" in navigator) || !navigator.geolocation) {
      addSystem(t(window.isSecureContext === false ? "geoInsecure" : "geoUnsupported"), true);
      return;
    }
    if (window.isSecureContext === false) {
      addSystem(t("geoInsecure"), true);
      return;
    }
    locating = true;
    locationButton.setAttribute("aria-busy", "true");
    locationButton.classList.add("is-busy");
    refreshControls();
    announce(t("locating"));
    const done = () => {
      locating = false;
      locationButton.removeAttribute("aria-busy");
      locationButton.classList.remove("is-busy");
      refreshControls();
    };
    try {
      navigator.geolocation.getCurrentPosition(
        (pos) => {
          done();
          const lat = pos && pos.coords ? Number(pos.coords.latitude) : NaN;
          const lng = pos && pos.coords ? Number(pos.coords.longitude) : NaN;
          if (!Number.isFinite(lat) || !Number.isFinite(lng)) {
            addSystem(t("geoUnavailable"), true);
            return;
          }
          sendMessage({
            kind: "location",
            text: t("myLocation"),
            latitude: Math.round(lat * 1e7) / 1e7,
            longitude: Math.round(lng * 1e7) / 1e7,
          });
        },
        (err) => {
          done();
          const code = err && err.code;
          addSystem(t(code === 1 ? "geoDenied" : code === 3 ? "geoTimeout" : "geoUnavailable"), true);
        },
        GEO_OPTIONS
      );
    } catch (e) {
      done();
      addSystem(t("geoUnavailable"), true);
    }
  }

  if (locationButton) locationButton.addEventListener("click", shareLocation);

  // ---------------------------------------------------------------- photo
  function onPhotoChosen() {
    const file = photoInput.files && photoInput.files[0];
    if (!file) return;
    photoInput.value = ""; // allow choosing the same file again
    const type = String(file.type || "").toLowerCase();
    if (!PHOTO_TYPES.includes(type)) {
      addSystem(t("photoType"), true);
      return;
    }
    if (file.size > MAX_PHOTO_BYTES) {
      addSystem(t("photoTooBig", { size: (file.size / 1048576).toFixed(1) }), true);
      return;
    }
    if (file.size === 0) {
      addSystem(t("photoEmpty"), true);
      return;
    }
    if (busy) return;
    sendMessage({ kind: "photo", text: "", file });
  }

  if (photoInput) photoInput.addEventListener("change", onPhotoChosen);

  // ---------------------------------------------------------- verify number
  // The number goes only to /chat/api/phone, never into a chat message: the transcript and Rasa
  // learn just that the chat is verified (a system line with the last four digits).
  const RESEND_SECONDS = 60;
  const phone = {
    busy: false,
    number: "", // kept only between "send code" and "verify"
    verified: false,
    last4: "",
    cooldownUntil: 0, // the server's per-phone send limit, so only for that number
    cooldownNumber: "",
    cooldownTimer: 0,
  };

  function fmtWait(seconds) {
    const n = Math.max(1, Math.ceil(seconds));
    return n < 120 ? t("waitSeconds", { n: fmtNumber(n) }) : t("waitMinutes", { n: fmtNumber(Math.ceil(n / 60)) });
  }

  function setPhoneStatus(text, kind) {
    if (!phoneStatus) return;
    phoneStatus.textContent = text || "";
    phoneStatus.classList.toggle("is-error", kind === "error");
    phoneStatus.classList.toggle("is-ok", kind === "ok");
  }

  function showPhoneState() {
    if (!phoneButton) return;
    const label = phone.verified ? t("phoneVerifiedButton", { last4: phone.last4 }) : t("phone");
    phoneButton.classList.toggle("is-verified", phone.verified);
    phoneButton.setAttribute("aria-label", label);
    phoneButton.setAttribute("title", label);
    if (phoneVerifiedNote) {
      phoneVerifiedNote.hidden = !phone.verified;
      phoneVerifiedNote.textContent = phone.verified ? t("phoneVerifiedState", { last4: phone.last4 }) : "";
    }
  }

  function refreshPhoneControls() {
    if (!phonePanel) return;
    const cooling = (number) => number === phone.cooldownNumber && Date.now() < phone.cooldownUntil;
    const resendCooling = cooling(phone.number);
    phoneSend.disabled = phone.busy || cooling(phoneInput.value.trim());
    codeVerify.disabled = phone.busy;
    codeResend.disabled = phone.busy || resendCooling;
    codeChange.disabled = phone.busy;
    const left = (phone.cooldownUntil - Date.now()) / 1000;
    codeResend.textContent = resendCooling ? t("resendIn", { wait: fmtWait(left) }) : t("resend");
  }

  function startCooldown(number, seconds) {
    phone.cooldownNumber = number;
    phone.cooldownUntil = Date.now() + seconds * 1000;
    window.clearInterval(phone.cooldownTimer);
    phone.cooldownTimer = window.setInterval(() => {
      if (Date.now() >= phone.cooldownUntil) window.clearInterval(phone.cooldownTimer);
      refreshPhoneControls();
    }, 1000);
    refreshPhoneControls();
  }

  function showPhoneStep(step) {
    phoneForm.hidden = step !== "phone";
    codeForm.hidden = step !== "code";
    const field = step === "code" ? codeInput : phoneInput;
    field.focus({ preventScroll: true });
  }

  function openPhonePanel() {
    if (!phonePanel) return;
    phonePanel.hidden = false;
    phoneButton.setAttribute("aria-expanded", "true");
    setPhoneStatus("");
    refreshPhoneControls();
    showPhoneStep(phone.number ? "code" : "phone");
  }

  function closePhonePanel(focusInput) {
    if (!phonePanel || phonePanel.hidden) return;
    phonePanel.hidden = true;
    phoneButton.setAttribute("aria-expanded", "false");
    // Back to the message field on a desktop; on a phone that would pop the keyboard up unasked.
    if (focusInput && finePointer()) input.focus({ preventScroll: true });
    else phoneButton.focus({ preventScroll: true });
  }

  // The page's own words for the server's refusal codes; the server's message when the code is new to us.
  function phoneError(res) {
    const d = res.data || {};
    if (res.status === 401 || res.status === 403) return t("sessionExpired");
    if (typeof d.error === "string" && I18N.en[`err_${d.error}`] != null) {
      const retry = Number(d.retry_after != null ? d.retry_after : res.retryAfter);
      return t(`err_${d.error}`, { wait: fmtWait(Number.isFinite(retry) && retry > 0 ? retry : RESEND_SECONDS) });
    }
    if (res.network) return t(res.timedOut ? "timeout" : navigator.onLine === false ? "offline" : "requestFailed");
    return serverMessage(res) || t(res.status === 429 ? "rateLimited" : res.status === 422 ? "invalid" : "requestFailed");
  }

  async function sendCode() {
    if (phone.busy) return;
    const number = phoneInput.value.trim() || phone.number;
    if (!number) {
      setPhoneStatus(t("phoneMissing"), "error");
      showPhoneStep("phone");
      return;
    }
    phone.busy = true;
    refreshPhoneControls();
    setPhoneStatus(t("sendingCode"));
    try {
      const res = await request(`${API_BASE}/phone`, { method: "POST", json: { phone: number } });
      if (!res.ok) {
        setPhoneStatus(phoneError(res), "error");
        const retry = Number(res.data && res.data.retry_after);
        if (res.status === 429 && Number.isFinite(retry) && retry > 0) startCooldown(number, retry);
        return;
      }
      phone.number = number;
      codeInput.value = "";
      startCooldown(number, RESEND_SECONDS);
      showPhoneStep("code");
      setPhoneStatus(t("codeSent", { last4: String((res.data && res.data.last4) || "") }), "ok");
    } finally {
      phone.busy = false;
      refreshPhoneControls();
    }
  }

  async function verifyCode() {
    if (phone.busy) return;
    // Full-width digits and spaces typed on some keyboards are still the code.
    const code = codeInput.value.normalize("NFKC").replace(/[\s-]/g, "");
    if (!/^[0-9]{6}$/.test(code)) {
      setPhoneStatus(t("err_enter_code"), "error");
      codeInput.focus({ preventScroll: true });
      return;
    }
    phone.busy = true;
    refreshPhoneControls();
    setPhoneStatus(t("verifying"));
    try {
      const res = await request(`${API_BASE}/phone/verify`, { method: "POST", json: { phone: phone.number, code } });
      if (!res.ok) {
        setPhoneStatus(phoneError(res), "error");
        codeInput.select();
        return;
      }
      phone.verified = true;
      phone.last4 = String((res.data && res.data.last4) || "");
      phone.number = "";
      phoneInput.value = "";
      codeInput.value = "";
      showPhoneState();
      setPhoneStatus("");
      closePhonePanel(true);
      announce(t("phoneVerified", { last4: phone.last4 }));
      schedulePoll(0); // fetches the system line the server added to the conversation
    } finally {
      phone.busy = false;
      refreshPhoneControls();
    }
  }

  async function loadPhoneState() {
    const res = await request(`${API_BASE}/phone`, { timeout: POLL_TIMEOUT_MS });
    if (!res.ok || !res.data) return;
    phone.verified = res.data.verified === true;
    phone.last4 = phone.verified ? String(res.data.last4 || "") : "";
    showPhoneState();
  }

  if (phoneButton && phonePanel && phoneForm && codeForm && phoneInput && codeInput) {
    phoneButton.addEventListener("click", () => (phonePanel.hidden ? openPhonePanel() : closePhonePanel(false)));
    phoneClose.addEventListener("click", () => closePhonePanel(false));
    phonePanel.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") {
        ev.preventDefault();
        closePhonePanel(false);
      }
    });
    phoneForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      phone.number = "";
      sendCode();
    });
    phoneInput.addEventListener("input", refreshPhoneControls);
    codeForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      verifyCode();
    });
    codeResend.addEventListener("click", () => sendCode());
    codeChange.addEventListener("click", () => {
      phone.number = "";
      codeInput.value = "";
      setPhoneStatus("");
      showPhoneStep("phone");
    });
  }

  // ------------------------------------------------------------------ misc
  if (jumpButton) jumpButton.addEventListener("click", () => {
    scrollToBottom();
    if (finePointer()) input.focus({ preventScroll: true });
  });
  scroller.addEventListener("scroll", () => {
    if (jumpButton && !jumpButton.hidden && nearBottom()) jumpButton.hidden = true;
  }, { passive: true });

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) {
      unseen = 0;
      document.title = t("docTitle");
      schedulePoll(0);
    }
  });
  window.addEventListener("online", () => {
    setBanner(null);
    pollFailures = 0;
    schedulePoll(0);
  });
  window.addEventListener("offline", () => setBanner(t("offline")));
  window.addEventListener("resize", autoGrow, { passive: true });

  // -------------------------------------------------------------- startup
  function applyI18n() {
    document.documentElement.lang = LANG;
    document.title = t("docTitle");
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.getAttribute("data-i18n"));
    for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
      node.setAttribute("placeholder", t(node.getAttribute("data-i18n-placeholder")));
    }
    for (const node of document.querySelectorAll("[data-i18n-aria-label]")) {
      node.setAttribute("aria-label", t(node.getAttribute("data-i18n-aria-label")));
    }
    for (const node of document.querySelectorAll("[data-i18n-title]")) {
      node.setAttribute("title", t(node.getAttribute("data-i18n-title")));
    }
  }

  applyI18n();
  showPhoneState();
  log.setAttribute("aria-busy", "true");
  showWelcome();
  updateComposer();
  if (navigator.onLine === false) setBanner(t("offline"));
  if (finePointer()) input.focus({ preventScroll: true });
  poll(); // restores the conversation (after=0), then keeps polling every 4 s
  loadPhoneState();
})();
