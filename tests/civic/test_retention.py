"""The PIPA purge: old transcripts blanked and old files deleted, except what an open case still needs."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from civic import inbox, retention
from civic.cases import file_case
from civic.conversations import get_or_create_conversation, record_message
from civic.media import PURGED_PATH, UnsupportedMedia, media_path, store_audio, store_photo
from civic.models import Attachment, Case, CaseFollower, Conversation, InboundUpdate, Message
from civic.outbox import SENT, enqueue
from civic.retention import PurgeCounts, purge
from civic.settings import get_settings
from civic.workflow import CaseStatus, transition

# Everything here happens in 1990-91, long before anything other tests store, so the counts are ours alone.
NOW = datetime(1991, 6, 1, tzinfo=UTC)
OLD = NOW - timedelta(days=400)  # past the default 365 days
RECENT = NOW - timedelta(days=30)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 24


@pytest.fixture(autouse=True)
def media_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MEDIA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def chat(session: Session, *, last_message_at: datetime, words: str = "합정역 앞 불법 주차") -> Conversation:
    """A web chat with a citizen's message (GPS, a button payload) and the bot's answer, silent since then."""
    conversation = get_or_create_conversation(session, channel="web", external_id=uuid.uuid4().hex)
    record_message(
        session,
        conversation=conversation,
        direction="in",
        sender="citizen",
        text=words,
        data={"payload": '/inform{"place": "합정역 7번 출구"}', "location": [37.549, 126.913], "attachment_ids": []},
    )
    record_message(
        session, conversation=conversation, direction="out", sender="bot", text="어디인가요?", data={"buttons": []}
    )
    conversation.last_message_at = last_message_at
    session.flush()
    return conversation


def case_for(session: Session, conversation: Conversation, status: CaseStatus = CaseStatus.RECEIVED) -> Case:
    case = file_case(
        session,
        category="illegal_parking",
        district="마포구",
        place="합정역 7번 출구",
        description="소화전 앞에 차가 서 있어요",
        channel="web",
        conversation_id=conversation.id,
    )
    path = {
        CaseStatus.RESOLVED: [CaseStatus.ACCEPTED, CaseStatus.ASSIGNED, CaseStatus.RESOLVED],
        CaseStatus.WITHDRAWN: [CaseStatus.WITHDRAWN],
        CaseStatus.REOPENED: [CaseStatus.REJECTED, CaseStatus.REOPENED],
    }.get(status, [])
    for step in path:
        transition(session, case=case, to=step, actor="test")
    conversation.last_message_at = OLD  # the notices of those steps were recorded "now"
    session.flush()
    return case


def photo(session: Session, conversation: Conversation, created_at: datetime, case: Case | None = None) -> Attachment:
    attachment = store_photo(session, conversation_id=conversation.id, content=PNG)
    attachment.created_at, attachment.case_id = created_at, case.id if case else None
    session.flush()
    return attachment


def texts(session: Session, conversation: Conversation) -> list[str]:
    query = select(Message.text).where(Message.conversation_id == conversation.id).order_by(Message.id)
    return list(session.execute(query).scalars())


def test_old_transcripts_without_an_open_case_are_blanked(session: Session) -> None:
    forgotten = chat(session, last_message_at=OLD)
    closed = chat(session, last_message_at=OLD)
    resolved_case = case_for(session, closed, CaseStatus.RESOLVED)
    # The resolution notice as the outbox delivered it into the web chat's transcript.
    notice = record_message(
        session,
        conversation=closed,
        direction="out",
        sender="bot",
        text=f"{resolved_case.number} 처리 완료: 견인했습니다",
        data={"outbox_id": 7, "kind": "case_status"},
    )
    closed.last_message_at = OLD
    pending = chat(session, last_message_at=OLD)
    case_for(session, pending, CaseStatus.RECEIVED)
    reopened = chat(session, last_message_at=OLD)
    case_for(session, reopened, CaseStatus.REOPENED)
    follower = chat(session, last_message_at=OLD)
    session.add(CaseFollower(case_id=case_for(session, pending).id, conversation_id=follower.id))
    recent = chat(session, last_message_at=RECENT)
    kept_texts = {c.id: texts(session, c) for c in (pending, reopened, follower, recent)}

    counts = purge(session, NOW)

    # 6: the resolution notice asking "fixed?" went onto the transcript with its buttons when it was queued.
    assert counts == PurgeCounts(conversations=2, messages=6)
    for conversation in (forgotten, closed):
        rows = session.execute(select(Message).where(Message.conversation_id == conversation.id)).scalars().all()
        assert rows, "rows stay: ids and counts still add up"
        assert all(row.text == "" and row.data.get("purged") is True for row in rows)
        assert not any({"payload", "location", "buttons"} & set(row.data) for row in rows)
    # References the software wrote stay, so the record still reads: which notice, of what kind.
    assert notice is not None
    session.refresh(notice)
    assert notice.data == {"outbox_id": 7, "kind": "case_status", "purged": True}
    for conversation in (pending, reopened, follower, recent):
        assert texts(session, conversation) == kept_texts[conversation.id]
    session.refresh(resolved_case)
    assert (resolved_case.description, resolved_case.place, resolved_case.status) == (
        "소화전 앞에 차가 서 있어요",
        "합정역 7번 출구",
        "resolved",
    )
    assert purge(session, NOW) == PurgeCounts()  # nothing left to do: a daily run does not rewrite old rows


def test_sent_copies_are_blanked_and_pending_ones_kept(session: Session) -> None:
    conversation = chat(session, last_message_at=OLD)
    sent = enqueue(
        session,
        conversation_id=conversation.id,
        channel="sms",
        kind="status",
        text="SR 접수",
        dedupe_key=uuid.uuid4().hex,
    )
    waiting = enqueue(
        session,
        conversation_id=conversation.id,
        channel="sms",
        kind="status",
        text="SR 처리",
        dedupe_key=uuid.uuid4().hex,
    )
    assert sent is not None and waiting is not None
    sent.status, sent.data = SENT, {"to_ciphertext": "c2VjcmV0"}
    session.flush()

    counts = purge(session, NOW)

    assert (counts.messages, counts.outbox_messages) == (2, 1)
    session.refresh(sent)
    session.refresh(waiting)
    assert (sent.text, sent.data) == ("", {"purged": True})
    assert waiting.text == "SR 처리"  # a retry must not send an empty message


def test_raw_updates_long_handled_are_blanked(session: Session) -> None:
    contact = {"update_id": 1, "message": {"text": "제 번호예요", "from": {"first_name": "민지"}}}
    keys = [uuid.uuid4().hex for _ in range(3)]
    inbox.accept_many(session, channel="telegram", updates=[(key, contact) for key in keys])
    handled, young, pending = (
        session.execute(select(InboundUpdate).where(InboundUpdate.update_key == key)).scalar_one() for key in keys
    )
    for row in (handled, young):
        inbox.mark_handled(session, channel="telegram", update_key=row.update_key)
    handled.received_at = pending.received_at = OLD
    young.received_at = RECENT
    session.flush()

    assert purge(session, NOW, dry_run=True).inbound_updates == 1
    assert purge(session, NOW).inbound_updates == 1

    for row in (handled, young, pending):
        session.refresh(row)
    assert handled.payload == {"purged": True}
    assert young.payload == pending.payload == contact  # a pending update is still to be handled
    assert inbox.accept_many(session, channel="telegram", updates=[(handled.update_key, contact)]) == [False]


def test_old_files_are_deleted_unless_an_open_case_needs_them(session: Session, media_dir: Path) -> None:
    loose = photo(session, chat(session, last_message_at=OLD), OLD)
    closed_chat = chat(session, last_message_at=OLD)
    of_closed_case = photo(session, closed_chat, OLD, case_for(session, closed_chat, CaseStatus.WITHDRAWN))
    open_chat = chat(session, last_message_at=OLD)
    open_case = case_for(session, open_chat)
    of_open_case = photo(session, open_chat, OLD, open_case)
    # A caller's recordings belong to the case through the conversation only.
    recording = store_audio(session, conversation_id=open_chat.id, wav=WAV)
    recording.created_at = OLD
    young = photo(session, chat(session, last_message_at=RECENT), RECENT)
    session.flush()
    doomed = [media_path(loose), media_path(of_closed_case)]
    kept = [media_path(of_open_case), media_path(recording), media_path(young)]
    assert all(path.is_file() and path.is_relative_to(media_dir) for path in doomed + kept)

    counts = purge(session, NOW)

    assert (counts.attachments, counts.files_deleted) == (2, 2)
    assert not any(path.exists() for path in doomed)
    assert all(path.read_bytes() in (PNG, WAV) for path in kept)
    for attachment in (loose, of_closed_case):
        session.refresh(attachment)
        assert attachment.path == PURGED_PATH and attachment.size == len(PNG)  # the row says what was there
        with pytest.raises(UnsupportedMedia):
            media_path(attachment)
    session.refresh(of_open_case)
    assert of_open_case.path != PURGED_PATH

    # Once the case is closed, its files go too.
    transition(session, case=open_case, to=CaseStatus.REJECTED, actor="test", note="다른 기관 소관")
    assert (purge(session, NOW).files_deleted, media_path(young).is_file()) == (2, True)


def test_dry_run_counts_the_same_and_changes_nothing(session: Session) -> None:
    conversation = chat(session, last_message_at=OLD)
    old_photo = photo(session, conversation, OLD)
    before = texts(session, conversation)

    dry = purge(session, NOW, dry_run=True)

    assert dry == PurgeCounts(conversations=1, messages=2, attachments=1, files_deleted=1)
    assert texts(session, conversation) == before
    assert media_path(old_photo).is_file()
    assert purge(session, NOW) == dry


def test_retention_periods_are_settings(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    conversation = chat(session, last_message_at=NOW - timedelta(days=40))
    monkeypatch.setenv("RETENTION_TRANSCRIPT_DAYS", "30")
    monkeypatch.setenv("RETENTION_MEDIA_DAYS", "3650")
    get_settings.cache_clear()
    photo(session, conversation, OLD)
    assert purge(session, NOW) == PurgeCounts(conversations=1, messages=2)
    monkeypatch.setenv("RETENTION_MEDIA_DAYS", "0")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="retention_media_days"):
        get_settings()


def test_cli_dry_run_prints_counts(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The configured database is the test database here; a dry run commits nothing to it.
    monkeypatch.setattr(retention, "get_session_factory", lambda: session_factory)
    assert retention.main(["--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["dry_run"] is True
    assert set(printed) == {"dry_run"} | set(asdict(PurgeCounts()))


async def test_the_web_app_purges_once_a_day_and_outlives_a_failed_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from webapp import main

    runs: list[object] = []

    def run_once(factory: object) -> PurgeCounts:
        runs.append(factory)
        if len(runs) == 1:
            raise RuntimeError("database unreachable")
        return PurgeCounts()

    monkeypatch.setattr(retention, "run_once", run_once)
    factory = object()
    task = asyncio.create_task(main.run_retention(factory, every_seconds=0.01, first_after=0.0))  # type: ignore[arg-type]
    for _ in range(200):
        if len(runs) >= 3:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert runs[:3] == [factory] * 3
    assert main.RETENTION_EVERY_SECONDS == 24 * 3600
