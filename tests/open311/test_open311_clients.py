"""Real Open311 clients against /open311/v2: FixMyStreet's sender's form, and the georeport package reading back."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient
from georeport import GeoReport
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from civic.api_keys import create_key
from civic.db import session_scope
from civic.models import Case
from civic.open311_filing import contact_of
from telephony.local_twilio import local_twilio, serve_in_thread
from tests.inprocess_app import running_app
from tests.open311 import spec


@pytest.fixture(scope="module")
def base_url(db_url: str, engine: Engine) -> Iterator[tuple[str, sessionmaker[Session]]]:
    """The app on a real loopback port (the clients speak HTTP with `requests`), its lifespan run by TestClient."""
    with (
        local_twilio("AC" + "4" * 32, "open311-clients-token") as fake,
        running_app(db_url, fake) as client,
        serve_in_thread(_without_lifespan(client)) as url,
    ):
        yield f"{url}/open311/v2", client.app.state.session_factory  # type: ignore[attr-defined]


def _without_lifespan(client: TestClient) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await client.app(scope, receive, send)
            return
        while (await receive())["type"] != "lifespan.shutdown":  # the TestClient runs the real lifespan
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

    return app


def _key(db: sessionmaker[Session]) -> str:
    with session_scope(db) as session:
        return create_key(session, name=f"fixmystreet-{uuid.uuid4().hex[:6]}", rate_limit_per_minute=100).secret


def _fixmystreet_post(url: str, key: str, marker: str) -> requests.Response:
    """The form FixMyStreet's perllib/Open311.pm sends (_populate_service_request_params, then _request)."""
    params = {
        "email": "reporter@example.org",
        "description": f"title: 가로등이 꺼졌어요\n\ndetail: 밤새 꺼져 있습니다 {marker}\n\n"
        "url: https://fixmystreet.example/report/42\n\nSubmitted via FixMyStreet\n",
        "service_code": "broken_streetlight",
        "first_name": "Jane",
        "last_name": "Doe",
        "phone": "+82 10-2345-6789",
        "lat": "37.566295",  # Utils::truncate_coordinate: six decimals
        "long": "126.977945",
        "media_url": "https://fixmystreet.example/photo/42.full.jpeg",
        "attribute[title]": "가로등이 꺼졌어요",
        "attribute[report_url]": "https://fixmystreet.example/report/42",
        "attribute[fixmystreet_id]": "42",
        "attribute[closest_address]": "세종대로 110",
        "jurisdiction_id": "seoul.go.kr",
        "api_key": key,
    }
    return requests.post(f"{url}/requests.xml", data=params, timeout=10)


def test_fixmystreet_files_and_reads_the_id_the_way_its_sender_does(base_url: tuple[str, Any]) -> None:
    url, db = base_url
    marker = uuid.uuid4().hex
    response = _fixmystreet_post(url, _key(db), marker)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    # Open311.pm: XML::Simple with ForceArray on request, then $obj->{request}->[0]->{service_request_id}.
    root = spec.parse_xml(response.content, "service_requests", "request")
    number = root.findtext("request/service_request_id") or ""
    assert number.startswith("SR-") and root.find("request/token") is None
    with session_scope(db) as session:
        case = session.execute(select(Case).where(Case.number == number)).scalar_one()
        assert case.category == "broken_streetlight" and case.district == "중구" and case.channel == "open311"
        assert marker in case.description and "42.full.jpeg" in case.description
        assert contact_of(case)["email"] == "reporter@example.org" and contact_of(case)["last_name"] == "Doe"
    # Its update fetcher asks for requests.xml by id with jurisdiction_id; errors parse as <errors><error>.
    query = {"service_request_id": number, "jurisdiction_id": "seoul.go.kr"}
    listed = requests.get(f"{url}/requests.xml", params=query, timeout=10)
    [request] = ET.fromstring(listed.content).findall("request")
    assert request.findtext("status") == "open" and request.findtext("service_code") == "broken_streetlight"
    refused = _fixmystreet_post(url, "o311_revoked-or-wrong", marker)
    assert refused.status_code == 403 and ET.fromstring(refused.content).findtext("error/code") == "403"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_georeport_client_reads_services_and_the_filed_request(base_url: tuple[str, Any], fmt: str) -> None:
    url, db = base_url
    filed = _fixmystreet_post(url, _key(db), uuid.uuid4().hex)
    number = ET.fromstring(filed.content).findtext("request/service_request_id")
    client = GeoReport(url, jurisdiction="seoul.go.kr", output_format=fmt)
    services = client.get_service_list()
    assert [s["service_code"] for s in services][:3] == ["illegal_parking", "illegal_banner", "illegal_dumping"]
    definition = client.get_service_definition("broken_streetlight")
    assert definition["service_code"] == "broken_streetlight"
    one = client.get_service_request(str(number))
    assert one["service_request_id"] == number and one["status"] == "open"
    assert one["service_name"] == "가로등 고장" and str(one["expected_datetime"]).endswith("+09:00")
    many = client.get_service_requests(service_request_id=str(number))
    found = many if isinstance(many, list) else [many]  # xmltodict gives a dict for a single <request>
    assert [r["service_request_id"] for r in found] == [number]
