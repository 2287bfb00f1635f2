"""The staff's poll command line: create (with a QR code), list, moderate, close."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from civic import poll_admin, polls
from civic.db import session_scope
from civic.models import LedgerCheckpoint, Poll


@pytest.fixture(autouse=True)
def on_test_database(monkeypatch: pytest.MonkeyPatch, session_factory: sessionmaker[Session]) -> None:
    monkeypatch.setattr(poll_admin, "get_session_factory", lambda: session_factory)


def created_id(output: str) -> str:
    return output.split()[1]


def test_create_a_qr_poll_writes_its_code_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], session_factory: sessionmaker[Session]
) -> None:
    png = tmp_path / "poll.png"
    code = poll_admin.main(
        [
            "create",
            "--title",
            "공원 이름 정하기",
            "--option",
            "푸른숲",
            "--option",
            "하늘마루",
            "--visibility",
            "qr",
            "--qr-png",
            str(png),
        ]
    )
    output = capsys.readouterr().out
    assert code == 0 and png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    public_id = created_id(output)
    assert f"/polls/{public_id}?t=" in output
    with session_scope(session_factory) as session:
        poll = polls.poll_by_public_id(session, public_id)
        assert poll is not None and poll.visibility == "qr" and poll.qr_token_hash
        token = output.split("?t=")[1].split()[0]
        assert token not in (poll.qr_token_hash or "")  # only its hash is stored


def test_password_from_stdin_and_close(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], session_factory: sessionmaker[Session]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-pass\n"))
    assert (
        poll_admin.main(
            ["create", "--title", "t", "--option", "a", "--option", "b", "--visibility", "password", "--password-stdin"]
        )
        == 0
    )
    public_id = created_id(capsys.readouterr().out)
    assert poll_admin.main(["approve", public_id]) == 1  # a city poll needs no moderation
    assert poll_admin.main(["close", public_id]) == 0
    with session_scope(session_factory) as session:
        poll = session.execute(select(Poll).where(Poll.public_id == public_id)).scalar_one()
        assert poll.status == polls.CLOSED and poll.password_hash and "s3cret" not in poll.password_hash
        final = session.execute(select(LedgerCheckpoint).where(LedgerCheckpoint.poll_id == poll.id)).scalars().all()
        assert [c.final for c in final] == [True]
    assert poll_admin.main(["list"]) == 0
    assert public_id in capsys.readouterr().out


def test_bad_input_is_refused_with_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert poll_admin.main(["create", "--title", "t", "--option", "only one"]) == 1
    assert "refused" in capsys.readouterr().err
    assert poll_admin.main(["close", "no-such-poll"]) == 1
