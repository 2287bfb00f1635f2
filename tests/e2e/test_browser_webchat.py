"""The web chat page in a real browser (Debian's Chromium) on the real stack: a report typed and filed."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser import chromium
from tests.e2e.stack import Stack

BOT_REPLY = ".msg-bot:not(.msg-local) .msg-text"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(locale="ko-KR")
    page = context.new_page()
    page.goto(f"{stack.web_url}/chat")
    yield page
    context.close()


def send(page: Page, text: str) -> None:
    page.fill("#composer-input", text)
    page.keyboard.press("Enter")


def test_a_citizen_types_a_report_confirms_it_and_sees_the_case_number(page: Page) -> None:
    expect(page.locator("#app-title")).to_have_text("서울 민원 챗봇")
    send(page, "마포구 합정역 2번 출구 앞에 차가 인도에 불법 주차되어 있어요")
    summary = page.locator(BOT_REPLY).last
    expect(summary).to_contain_text("이대로 접수할까요?", timeout=20_000)
    expect(summary).to_contain_text("마포구")
    page.get_by_role("button", name="네, 접수해 주세요").click()
    expect(page.locator(BOT_REPLY).last).to_contain_text(re.compile(r"SR-\d{4}-\d{6}"), timeout=20_000)
    # The citizen's own message stays on screen as sent.
    expect(page.locator(".msg-citizen .msg-text").first).to_contain_text("합정역 2번 출구")


def test_markup_typed_by_a_citizen_is_shown_as_text_never_run(page: Page) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    send(page, '<img src=x onerror="alert(1)"><script>alert(2)</script> 가로등이 꺼졌어요')
    citizen = page.locator(".msg-citizen .msg-text").last
    expect(citizen).to_contain_text('<img src=x onerror="alert(1)">')
    expect(page.locator(BOT_REPLY).last).not_to_be_empty(timeout=20_000)
    assert page.locator(".msg-citizen img").count() == 0
    assert dialogs == []
