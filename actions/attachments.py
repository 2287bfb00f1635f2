"""Photos and GPS positions shared outside a report: kept on the draft for the report that follows."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.complaint import coordinates, gps_place
from actions.context import language_of, verified_claims
from civic import geo
from civic.i18n import district_label


class ActionReceivePhoto(Action):
    """Keeps the photo ids for the next report and asks what the problem is."""

    def name(self) -> str:
        return "action_receive_photo"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        metadata = verified_claims(tracker)  # photos and GPS only as the gateway signed them
        known = list(tracker.get_slot("attachment_ids") or [])
        new = [str(i) for i in metadata.get("attachment_ids") or [] if str(i) not in known]
        dispatcher.utter_message(response="utter_photo_received")
        return [SlotSet("attachment_ids", known + new)]


class ActionReceiveLocation(Action):
    """Turns a shared position into district, dong and place for the next report."""

    def name(self) -> str:
        return "action_receive_location"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        point = coordinates(tracker)
        location = geo.locate(*point) if point else None
        if point is None or location is None:
            dispatcher.utter_message(response="utter_location_outside_seoul")
            return []
        dispatcher.utter_message(
            response="utter_location_received",
            district_label=district_label(location.gu_ko, language_of(tracker)),
            dong=location.dong_ko or "",
        )
        return [
            SlotSet("district", location.gu_ko),
            SlotSet("dong", location.dong_ko),
            SlotSet("place", gps_place(location, point)),
            SlotSet("latitude", point[0]),
            SlotSet("longitude", point[1]),
        ]
