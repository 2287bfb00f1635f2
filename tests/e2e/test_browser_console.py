"""The operator console in a real browser (Debian's Chromium) on the real stack: log in, watch the live queue."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session, sessionmaker

from tests.browser import chromium
from tests.e2e.stack import ChatClient, Stack
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
