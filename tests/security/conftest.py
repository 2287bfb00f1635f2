"""A fake Rasa on a loopback port, shared by the forged-input modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from telephony.local_twilio import serve_in_thread
from tests.fakes.rasa import FakeRasa


@pytest.fixture(scope="module")
def rasa() -> Iterator[FakeRasa]:
    fake = FakeRasa()
    with serve_in_thread(fake.app) as url:
        fake.url = url  # type: ignore[attr-defined]
        yield fake
