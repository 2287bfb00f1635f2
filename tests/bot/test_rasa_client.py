"""The Rasa client over several replicas: turns spread over them, a replica that is down costs nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.rasa_client import RasaClient, RasaUnavailable
from telephony.local_twilio import serve_in_thread as serve
from tests.e2e.stack import free_port
from tests.fakes.rasa import FakeRasa


@pytest.fixture
def replicas() -> Iterator[list[tuple[FakeRasa, str]]]:
    first, second = FakeRasa(), FakeRasa()
    with serve(first.app) as first_url, serve(second.app) as second_url:
        yield [(first, first_url), (second, second_url)]


async def test_turns_take_turns_over_the_replicas(replicas: list[tuple[FakeRasa, str]]) -> None:
    client = RasaClient(",".join(url for _, url in replicas), timeout=5)
    for n in range(6):
        await client.send(sender="web:r1", text=f"turn {n}", metadata={})
    await client.aclose()
    assert [len(fake.turns) for fake, _ in replicas] == [3, 3]


async def test_a_replica_that_refuses_connections_is_passed_over(replicas: list[tuple[FakeRasa, str]]) -> None:
    (alive, url), dead = replicas[0], f"http://127.0.0.1:{free_port()}"
    client = RasaClient(f"{dead}, {url}", timeout=5)
    replies = [await client.send(sender="web:r2", text=f"turn {n}", metadata={}) for n in range(4)]
    await client.pause("web:r2")
    assert await client.is_paused("web:r2") is True
    await client.aclose()
    assert len(alive.turns) == 4 and replies[0][0]["text"] == "echo: turn 0"


async def test_all_replicas_down_is_rasa_unavailable() -> None:
    client = RasaClient(f"http://127.0.0.1:{free_port()},http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(RasaUnavailable):
        await client.send(sender="web:r3", text="hello", metadata={})
    await client.aclose()


def test_no_url_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="no Rasa URL"):
        RasaClient(" , ")
