"""The operator console in a real browser (Debian's Chromium) on the real stack: log in, watch the live queue."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from civic.cases import file_case
from civic.conversations import get_or_create_conversation
from civic.db import session_scope
from civic.models import Conversation, OutboxMessage
from tests.browser import chromium
from tests.e2e.stack import ChatClient, Stack, rasa_api_params
from tests.operator_console.helpers import PASSWORD, new_user


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="ko-KR")
    yield context.new_page()
    context.close()


def log_in(page: Page, stack: Stack, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{stack.web_url}/console/queue")
    expect(page).to_have_url(f"{stack.web_url}/console/login?next=%2Fconsole%2Fqueue")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.locator("form button[type=submit]").first.click()


def test_a_case_filed_in_the_chat_appears_in_the_open_queue_without_reload(
    page: Page, stack: Stack, db: sessionmaker[Session], citizen: ChatClient
) -> None:
    log_in(page, stack, new_user(db, "operator"))
    expect(page).to_have_url(f"{stack.web_url}/console/queue")
    expect(page.locator("#queue-status")).to_have_attribute("data-state", "live")
    citizen.say("마포구 합정역 2번 출구 앞 가로등이 꺼졌어요 <b>빨리</b>")
    filed = " ".join(reply["text"] for reply in citizen.say("네"))
    match = re.search(r"SR-\d{4}-\d{6}", filed)
    assert match, filed
    number = match.group(0)
    row = page.locator("#queue-items tr", has_text=number)
    expect(row).to_be_visible(timeout=5_000)
    expect(row.locator("td.kind")).to_have_text("case")
    expect(row.locator("td.detail")).to_contain_text("<b>빨리</b>")  # shown as typed, not as markup


def test_a_wrong_password_keeps_the_operator_out(page: Page, stack: Stack, db: sessionmaker[Session]) -> None:
    log_in(page, stack, new_user(db, "operator"), password="not the password at all")
    expect(page).to_have_url(f"{stack.web_url}/console/login")
    expect(page.locator("body")).to_contain_text("Log in")
    assert page.context.cookies() == [] or all(c["name"] != "civic_console" for c in page.context.cookies())


def test_a_case_goes_from_received_to_resolved_and_the_citizen_is_told_in_their_language(
    page: Page, stack: Stack, db: sessionmaker[Session]
) -> None:
    with session_scope(db) as session:
        conversation = get_or_create_conversation(
            session, channel="web", external_id=f"browser-{uuid.uuid4().hex}", language="en"
        )
        case = file_case(
            session,
            category="broken_streetlight",
            district="마포구",
            place="Hapjeong exit 2",
            description="The street light is out",
            channel="web",
            language="en",
            conversation_id=conversation.id,
        )
        number, department_code, conversation_id = case.number, case.department.code, conversation.id

    log_in(page, stack, new_user(db, "operator"))
    page.goto(f"{stack.web_url}/console/cases/{number}")
    flash = page.locator(".flash.ok")
    page.get_by_role("button", name="접수 확인 Accept").click()
    expect(flash).to_contain_text("Case accepted.")
    page.get_by_role("button", name="부서 배정 Assign").click()
    expect(flash).to_contain_text("Case assigned to the department.")
    # An operator has no resolve button: that is the department's to do.
    assert page.get_by_role("button", name="처리 완료 Resolve").count() == 0
    page.get_by_role("button", name="로그아웃 Log out").click()

    log_in(page, stack, new_user(db, "official", department_code))
    page.goto(f"{stack.web_url}/console/inbox")
    page.get_by_role("link", name=number).click()
    page.get_by_role("button", name="처리 시작 Start").click()
    expect(flash).to_contain_text("Work started.")
    page.fill("textarea[name=answer]", "We replaced the lamp on 25 November.")
    page.get_by_role("button", name="처리 완료 Resolve").click()
    expect(flash).to_contain_text("Case resolved")
    expect(page.locator("table")).to_contain_text("in_progress → resolved")

    with session_scope(db) as session:
        notices = (
            session.execute(
                select(OutboxMessage.text)
                .where(OutboxMessage.conversation_id == conversation_id)
                .order_by(OutboxMessage.id)
            )
            .scalars()
            .all()
        )
    assert notices[-1] == (
        f"[{number}] Your report has been resolved.\nAnswer: We replaced the lamp on 25 November.\n"
        "Is the problem fixed?"  # with its two buttons: the "fixed?" question of issue 17
    )
    assert len(notices) == 4  # accepted, assigned, in progress, resolved: one each


def test_an_operator_takes_over_a_web_chat_talks_both_ways_and_hands_it_back(
    browser: Browser, page: Page, stack: Stack, db: sessionmaker[Session]
) -> None:
    chat = browser.new_context(locale="ko-KR").new_page()
    chat.goto(f"{stack.web_url}/chat")
    chat.fill("#composer-input", "상담사 연결해 주세요")
    chat.keyboard.press("Enter")
    expect(chat.locator(".msg-bot .msg-text").last).to_contain_text("상담", timeout=20_000)

    log_in(page, stack, new_user(db, "operator"))
    row = page.locator("#queue-items tr[data-kind=handoff]").last
    expect(row).to_be_visible(timeout=5_000)
    row.locator("td.title a").click()
    expect(page).to_have_url(re.compile(r"/console/conversations/\d+$"))
    conversation_id = int(page.url.rsplit("/", 1)[1])
    sender = _rasa_sender(db, conversation_id)
    page.get_by_role("button", name="대화 맡기 Take over the conversation").click()
    expect(page.locator(".flash.ok")).to_contain_text("the bot is paused")
    assert _paused(stack, sender) is True
    expect(chat.locator(".msg-system .msg-text").last).to_contain_text(
        "120 상담사가 대화에 참여했습니다", timeout=10_000
    )

    # Citizen → operator: the console shows it within a second or two, as text.
    chat.fill("#composer-input", "<i>아직</i> 차가 그대로예요")
    chat.keyboard.press("Enter")
    expect(page.locator("#transcript li.msg-in").last).to_contain_text("<i>아직</i> 차가 그대로예요", timeout=5_000)

    # Operator → citizen, through the outbox, shown in the chat as the operator's.
    page.fill("#message-text", "단속반을 보냈습니다. 10분 안에 도착합니다.")
    page.get_by_role("button", name="보내기 Send").click()
    expect(chat.locator(".msg-operator .msg-text").last).to_have_text(
        "단속반을 보냈습니다. 10분 안에 도착합니다.", timeout=10_000
    )
    expect(page.locator("#message-text")).to_have_value("")

    # Hand back, asking the bot to collect the report: the bot speaks again in the chat.
    page.check("input[name=collect_missing]")
    page.get_by_role("button", name="챗봇에게 돌려주기 Hand back to the bot").click()
    expect(page.locator(".flash.ok")).to_contain_text("back with the bot")
    assert _paused(stack, sender) is False
    expect(chat.locator(".msg-system .msg-text").last).to_contain_text("다시 챗봇이 도와드립니다", timeout=10_000)
    expect(chat.locator(".msg-bot .msg-text").last).to_contain_text("어떤", timeout=10_000)
    chat.context.close()


def _rasa_sender(db: sessionmaker[Session], conversation_id: int) -> str:
    with session_scope(db) as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        return f"{conversation.channel}:{conversation.external_id}"


def _paused(stack: Stack, sender: str) -> bool:
    params = {"include_events": "NONE", **rasa_api_params()}
    tracker = httpx.get(f"{stack.rasa_url}/conversations/{sender}/tracker", params=params)
    return bool(tracker.json()["paused"])
