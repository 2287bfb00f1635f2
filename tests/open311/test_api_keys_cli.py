"""The API keys' command line: create prints the key once, list shows no secret, revoke stops it; all audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from civic.api_keys import hash_key, verify_key
from civic.models import ApiKey, AuditEntry
from operator_console.api_keys import main


def test_create_list_revoke(bound_factory: sessionmaker[Session], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["create", "--name", "FixMyStreet Seoul", "--rate", "300"], session_factory=bound_factory) == 0
    secret = capsys.readouterr().out.splitlines()[-1]
    assert secret.startswith("o311_") and len(secret) > 40
    with bound_factory() as session:
        key = session.execute(select(ApiKey).where(ApiKey.key_hash == hash_key(secret))).scalar_one()
        assert key.rate_limit_per_minute == 300 and key.created_by == "cli"
        assert verify_key(session, secret=secret) is not None
        key_id = key.id
    assert main(["list"], session_factory=bound_factory) == 0
    listed = capsys.readouterr().out
    assert "FixMyStreet Seoul" in listed and secret not in listed and secret[:12] in listed
    assert main(["revoke", "--id", str(key_id)], session_factory=bound_factory) == 0
    with bound_factory() as session:
        assert verify_key(session, secret=secret) is None
        actions = session.execute(
            select(AuditEntry.action).where(AuditEntry.target == f"api_key:{key_id}").order_by(AuditEntry.id)
        ).scalars()
        assert list(actions) == ["api_key.created", "api_key.revoked"]


def test_refusals(bound_factory: sessionmaker[Session], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["create", "--name", "  "], session_factory=bound_factory) == 1
    assert main(["create", "--name", "x", "--rate", "0"], session_factory=bound_factory) == 1
    assert main(["revoke", "--id", "999999"], session_factory=bound_factory) == 1
    assert capsys.readouterr().err.splitlines() == ["error: name_required", "error: bad_rate", "error: unknown_key"]
