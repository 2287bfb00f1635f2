"""GeoReport v2 as written (open311.github.io GeoReport_v2/index.md): fields, types and XML shapes to check against.

Written from the spec's text and examples, with open311/schema-validation's schema/georeport-v2/*.json as a reference
for types (nothing copied). Where the two differ the written spec wins: /requests/{id}, ids as strings.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
SERVICE_FIELDS = {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
ATTRIBUTE_FIELDS = {
    "variable", "code", "datatype", "required", "datatype_description", "order", "description", "values",
}  # fmt: skip
DATATYPES = {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}
REQUEST_FIELDS = {
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
    "address", "address_id", "zipcode", "lat", "long", "media_url",
}  # fmt: skip
POST_FIELDS = {"service_request_id", "token", "service_notice", "account_id"}
PERSONAL_FIELDS = {"email", "phone", "first_name", "last_name", "device_id", "account_id"}


def check_service(service: dict[str, Any]) -> None:
    assert set(service) <= SERVICE_FIELDS
    assert isinstance(service["service_code"], str) and isinstance(service["service_name"], str)
    assert isinstance(service["metadata"], bool)
    assert service["type"] in {"realtime", "batch", "blackbox"}
    assert isinstance(service["keywords"], str) and isinstance(service["group"], str)


def check_definition(definition: dict[str, Any]) -> None:
    assert set(definition) == {"service_code", "attributes"}
    for attribute in definition["attributes"]:
        assert set(attribute) <= ATTRIBUTE_FIELDS
        assert isinstance(attribute["variable"], bool) and isinstance(attribute["required"], bool)
        assert isinstance(attribute["code"], str) and attribute["datatype"] in DATATYPES
        assert attribute["order"] is None or isinstance(attribute["order"], int)
        if attribute["datatype"].endswith("valuelist"):
            assert attribute["values"] and all(set(v) == {"key", "name"} for v in attribute["values"])


def check_request(request: dict[str, Any]) -> None:
    assert set(request) <= REQUEST_FIELDS and not set(request) & PERSONAL_FIELDS
    assert {"service_request_id", "status", "service_code", "requested_datetime"} <= set(request)
    assert isinstance(request["service_request_id"], str)
    assert request["status"] in {"open", "closed"}
    for name in ("requested_datetime", "updated_datetime", "expected_datetime"):
        assert request[name] is None or ISO_8601.match(request[name]), request[name]
    for name in ("lat", "long"):
        assert request[name] is None or isinstance(request[name], float)
    assert request["description"] is None or len(request["description"]) <= 4000


def check_errors(body: Any, status: int) -> None:
    assert isinstance(body, list) and body
    for entry in body:
        assert set(entry) == {"code", "description"} and entry["code"] == status and entry["description"]


def parse_xml(content: bytes, root: str, item: str | None) -> ET.Element:
    """Well-formed, UTF-8 declared, the spec's root element holding only `item` children."""
    assert content.startswith(b"<?xml version='1.0' encoding='UTF-8'?>") or content.startswith(
        b'<?xml version="1.0" encoding="UTF-8"?>'
    )
    element = ET.fromstring(content)
    assert element.tag == root
    if item is not None:
        assert all(child.tag == item for child in element)
    return element


def xml_record(element: ET.Element) -> dict[str, str]:
    """A flat XML record (a request, a service) as {tag: text}."""
    return {child.tag: child.text or "" for child in element}


# mySociety's servicerequestupdates extension, as FixMyStreet's Open311.pm and GetServiceRequestUpdates.pm read it.
UPDATE_FIELDS = {
    "update_id", "service_request_id", "status", "updated_datetime", "description", "media_url",
    "external_status_code",
}  # fmt: skip
# FixMyStreet's map_state: lower case, "_" as a space, a few renamed; the rest must be one of its own states.
FIXMYSTREET_RENAMED = {"fixed": "fixed - council", "open": "confirmed", "closed": "closed"}
FIXMYSTREET_STATES = {
    "confirmed", "investigating", "in progress", "action scheduled", "fixed - council", "closed", "unable to fix",
    "not responsible", "duplicate", "internal referral",
}  # fmt: skip


def check_update(update: dict[str, Any]) -> None:
    assert set(update) <= UPDATE_FIELDS and not set(update) & PERSONAL_FIELDS
    assert isinstance(update["update_id"], str) and update["update_id"]
    assert isinstance(update["service_request_id"], str) and update["service_request_id"]
    assert ISO_8601.match(update["updated_datetime"]), update["updated_datetime"]
    state = update["status"].lower().replace("_", " ")
    assert FIXMYSTREET_RENAMED.get(state, state) in FIXMYSTREET_STATES, update["status"]


def fixmystreet_updates(content: bytes) -> list[dict[str, str | None]]:
    """The XML as FixMyStreet's XML::Simple reads it (ForceArray request_update, SuppressEmpty => undef)."""
    root = parse_xml(content, "service_request_updates", "request_update")
    return [{child.tag: child.text or None for child in update} for update in root]
