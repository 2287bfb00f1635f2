"""Least privilege in the console: an official sees only their case's part of a shared chat, and their department's."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from civic.cases import file_case, get_case
from civic.conversations import get_or_create_conversation, record_message
from civic.db import session_scope
from civic.media import store_audio, store_photo
from civic.models import Conversation, Department, OutboxMessage
from telephony.local_twilio import local_twilio
from tests.inprocess_app import running_app
from tests.operator_console.helpers import log_in, new_user

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 24


@pytest.fixture(scope="module")
def client(db_url: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    media = tmp_path_factory.mktemp("media")
    with engine.connect() as connection:
        before = connection.execute(select(func.coalesce(func.max(OutboxMessage.id), 0))).scalar_one()
    with (
        local_twilio("AC" + "5" * 32, "least-privilege-twilio-token") as fake,
        running_app(db_url, fake, MEDIA_DIR=str(media)) as test_client,
    ):
        yield test_client
    with engine.begin() as connection:
        connection.execute(delete(OutboxMessage).where(OutboxMessage.id > before))


@pytest.fixture
def db(client: TestClient) -> sessionmaker[Session]:
    client.cookies.clear()
    return client.app.state.session_factory  # type: ignore[attr-defined]


@dataclass(frozen=True)
class SharedChat:
    """One chat that carried two reports to two departments, and what was said about them afterwards."""

    noise: str  # 마포구 noise: one department
    dumping: str  # 노원구 dumping: another
    noise_photo: str
    dumping_photo: str
    dumping_recording: str  # not linked to the case, only referenced by the transcript (like a caller's turn)
    noise_department: str
    dumping_department: str


def say(session: Session, conversation: Conversation, text: str, sender: str = "citizen", **data: object) -> None:
    direction = "in" if sender == "citizen" else "out"
    record_message(session, conversation=conversation, direction=direction, sender=sender, text=text, data=data)
    session.flush()
    time.sleep(0.002)  # the rule compares timestamps: keep each step strictly after the one before


@pytest.fixture
def chat(db: sessionmaker[Session]) -> SharedChat:
    with session_scope(db) as session:
        conversation = get_or_create_conversation(session, channel="telegram", external_id=uuid.uuid4().hex)
        noise_photo = store_photo(session, conversation_id=conversation.id, content=PNG).id
        say(session, conversation, "NOISE-REPORT 합정역 공사 소음", attachment_ids=[noise_photo])
        say(session, conversation, "NOISE-SUMMARY 접수할까요?", sender="bot")
        noise = file_case(
            session,
            category="noise",
            district="마포구",
            place="합정역",
            description="공사 소음",
            channel="telegram",
            conversation_id=conversation.id,
            attachment_ids=[noise_photo],
        )
        time.sleep(0.002)
        say(session, conversation, f"접수번호는 {noise.number}이에요.", sender="bot")
        dumping_photo = store_photo(session, conversation_id=conversation.id, content=PNG).id
        recording = store_audio(session, conversation_id=conversation.id, wav=WAV).id
        say(session, conversation, "DUMPING-REPORT 상계동 쓰레기", attachment_ids=[dumping_photo, recording])
        dumping = file_case(
            session,
            category="illegal_dumping",
            district="노원구",
            place="상계동",
            description="쓰레기 무단투기",
            channel="telegram",
            conversation_id=conversation.id,
            attachment_ids=[dumping_photo],
        )
        time.sleep(0.002)
        say(session, conversation, f"접수번호는 {dumping.number}이에요.", sender="bot")
        say(session, conversation, f"NOISE-LATER {noise.number.lower()} 어떻게 됐나요?")
        say(session, conversation, f"내 신고 목록:\n• {noise.number}\n• {dumping.number}", sender="bot")
        assert noise.department_id != dumping.department_id
        return SharedChat(
            noise.number,
            dumping.number,
            noise_photo,
            dumping_photo,
            recording,
            noise.department.code,
            dumping.department.code,
        )


def test_an_official_sees_only_their_cases_part_of_a_shared_chat(
    client: TestClient, db: sessionmaker[Session], chat: SharedChat
) -> None:
    log_in(client, new_user(db, "official", chat.noise_department))
    page = client.get(f"/console/cases/{chat.noise}").text
    assert "NOISE-REPORT" in page and "NOISE-SUMMARY" in page and "NOISE-LATER" in page
    assert f"접수번호는 {chat.noise}이에요." in page
    assert "DUMPING-REPORT" not in page and chat.dumping not in page  # nor the list naming both cases
    assert chat.noise_photo in page and chat.dumping_photo not in page and chat.dumping_recording not in page
    assert client.get(f"/console/media/{chat.noise_photo}").status_code == 200
    for other in (chat.dumping_photo, chat.dumping_recording):
        assert client.get(f"/console/media/{other}").status_code == 404


def test_the_other_departments_official_sees_theirs_and_not_the_first(
    client: TestClient, db: sessionmaker[Session], chat: SharedChat
) -> None:
    log_in(client, new_user(db, "official", chat.dumping_department))
    assert client.get(f"/console/cases/{chat.noise}").status_code == 404
    page = client.get(f"/console/cases/{chat.dumping}").text
    assert "DUMPING-REPORT" in page and f"접수번호는 {chat.dumping}이에요." in page
    assert "NOISE-REPORT" not in page and "NOISE-LATER" not in page and chat.noise not in page
    assert chat.dumping_photo in page and chat.dumping_recording in page and chat.noise_photo not in page
    for mine in (chat.dumping_photo, chat.dumping_recording):
        assert client.get(f"/console/media/{mine}").status_code == 200
    assert client.get(f"/console/media/{chat.noise_photo}").status_code == 404


def test_operators_and_admins_keep_the_whole_conversation(
    client: TestClient, db: sessionmaker[Session], chat: SharedChat
) -> None:
    for role in ("operator", "admin"):
        client.cookies.clear()
        log_in(client, new_user(db, role))
        page = client.get(f"/console/cases/{chat.noise}").text
        assert "NOISE-REPORT" in page and "DUMPING-REPORT" in page and chat.dumping in page
        for attachment in (chat.noise_photo, chat.dumping_photo, chat.dumping_recording):
            assert client.get(f"/console/media/{attachment}").status_code == 200


def test_similar_cases_shown_to_an_official_are_their_departments_only(
    client: TestClient, db: sessionmaker[Session]
) -> None:
    with session_scope(db) as session:
        mine, theirs = (
            file_case(
                session,
                category="broken_streetlight",
                district="종로구",
                dong="청운효자동",
                place=f"청운초 앞 가로등 {n}",
                description="가로등이 꺼졌어요",
                channel="web",
            )
            for n in (1, 2)
        )
        other = session.execute(select(Department).where(Department.id != mine.department_id)).scalars().first()
        assert other is not None
        theirs.department_id = other.id  # an operator routed it elsewhere
        numbers, code = (mine.number, theirs.number), mine.department.code
    log_in(client, new_user(db, "official", code))
    assert numbers[1] not in client.get(f"/console/cases/{numbers[0]}").text
    client.cookies.clear()
    log_in(client, new_user(db, "operator"))
    assert numbers[1] in client.get(f"/console/cases/{numbers[0]}").text
    with session_scope(db) as session:
        assert get_case(session, numbers[1]) is not None
