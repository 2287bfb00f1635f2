"""The civic tables: citizens, conversations and their transcript, cases, routing, inbox, outbox."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import BigInteger

from civic.db import Base, UTCDateTime, utcnow


class Citizen(Base):
    """A person known by a verified phone number, stored encrypted plus a blind index."""

    __tablename__ = "citizens"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    phone_index: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Conversation(Base):
    """One chat thread on one channel (a Telegram chat, a web session, a phone caller)."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    language: Mapped[str] = mapped_column(String(8), default="ko")
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    handoff_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handoff_reason: Mapped[str | None] = mapped_column(Text)
    # While an operator holds the conversation the gateway passes citizens' messages to them, not to Rasa.
    held_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("console_users.id"), index=True)
    held_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Rasa's tracker was paused for a takeover and not resumed yet: the gateway resumes it before the next turn,
    # whoever ended the takeover (an operator, a call that ended, a deactivated account).
    rasa_paused: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(Base):
    """One line of a conversation's transcript, inbound or outbound."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("conversation_id", "dedupe_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    direction: Mapped[str] = mapped_column(String(3))
    sender: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Department(Base):
    """A unit that works cases, e.g. 마포구청 교통행정과 (`mapo-transport`)."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_ko: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    name_ja: Mapped[str] = mapped_column(String(128))


class Case(Base):
    """A citizen's complaint, numbered SR-YYYY-NNNNNN, moving through civic.workflow."""

    __tablename__ = "cases"
    __table_args__ = (
        # The officials' inbox: one department's open cases by due date.
        Index("ix_cases_department_status_due", "department_id", "status", "due_at"),
        # Similar cases nearby: one category's recent cases.
        Index("ix_cases_category_created", "category", "created_at"),
        # The dashboard's city-wide overdue count.
        Index("ix_cases_status_due", "status", "due_at"),
        # Open311's GET requests: the newest cases first, a page at a time (civic.open311).
        Index("ix_cases_created_id", "created_at", "id"),
        # Duplicates at intake (civic.duplicates): one category's cases in a latitude band, or in one dong.
        Index("ix_cases_category_lat_lon", "category", "latitude", "longitude"),
        Index("ix_cases_district_dong_category_created", "district", "dong", "category", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    category: Mapped[str] = mapped_column(String(32), index=True)
    district: Mapped[str] = mapped_column(String(16), index=True)
    dong: Mapped[str | None] = mapped_column(String(32))
    place: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    status: Mapped[str] = mapped_column(String(16), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8), default="ko")
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    department: Mapped[Department] = relationship()
    events: Mapped[list[CaseEvent]] = relationship(order_by="CaseEvent.id", viewonly=True)
    attachments: Mapped[list[str]] = mapped_column(JSON, default=list)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    due_at: Mapped[date]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when an operator closed this case as a duplicate of another one (civic.console_cases.merge).
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    # The reporter's email, phone and name sent with an Open311 request, sealed like phones (civic.open311_filing).
    contact_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)


class CaseEvent(Base):
    """One status change of a case: who, when, from → to, and why."""

    __tablename__ = "case_events"
    # The dashboard's medians: time to the first acceptance and resolution; Open311's updates between two dates.
    __table_args__ = (
        Index("ix_case_events_to_status_created", "to_status", "created_at", "case_id"),
        Index("ix_case_events_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    actor: Mapped[str] = mapped_column(String(64))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    case: Mapped[Case] = relationship()


class CaseNumberSequence(Base):
    """The last case number handed out in a year (numbers restart each year)."""

    __tablename__ = "case_number_sequences"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_value: Mapped[int] = mapped_column(default=0)


class Attachment(Base):
    """A photo or audio file a citizen sent; bytes live under settings.media_dir."""

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A caller's answer the 120 line's confidence gate did not believe: the report field it answers ("place",
    # "description") until an operator types what was said (telephony/transcripts.py).
    to_transcribe: Mapped[str | None] = mapped_column(String(16))
    transcript: Mapped[str | None] = mapped_column(Text)
    transcribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InboundUpdate(Base):
    """A raw update a channel pushed to us (e.g. a Telegram update), kept until it has been handled.

    Acknowledging the channel only after this row is committed means an update we answered
    "200 OK" to survives a crash; the unique key makes the channel's retries no-ops.
    """

    __tablename__ = "inbound_updates"
    __table_args__ = (
        UniqueConstraint("channel", "update_key"),
        Index("ix_inbound_updates_pending", "status", "lease_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    update_key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PhoneCall(Base):
    """One call to the 120 line: where its dialogue stands between two caller turns, and how it ended.

    Each bot reply restarts the call's media stream, possibly on another web worker, so what the next turn
    needs (the expected answers, silences and misses in a row) lives here, not in a worker's memory.
    """

    __tablename__ = "phone_calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active, queued (for an operator), ended
    turn: Mapped[int] = mapped_column(default=0)
    expectation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    silences: Mapped[int] = mapped_column(default=0)
    misses: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))


class SpentStreamToken(Base):
    """A media-stream token (telephony.stream_tokens) already used to open a stream: each opens one stream only.

    Kept until the token expires, after which its signature refuses it anyway; the primary key makes two web
    workers racing to spend the same token agree on one winner.
    """

    __tablename__ = "spent_stream_tokens"

    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    spent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReportDraft(Base):
    """A report a citizen started and did not file (a caller hung up mid-report): kept for the 120 operators."""

    __tablename__ = "report_drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    slots: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, filed, dismissed
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxMessage(Base):
    """A message to a citizen waiting to be delivered by its channel's sender."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dedupe_key: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Poll(Base):
    """A city (policy) or citizen poll: its options, voting window, who may vote, and its Merkle log."""

    __tablename__ = "polls"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)  # random; in URLs and the log id
    kind: Mapped[str] = mapped_column(String(16))  # policy | citizen
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | approved | rejected | closed
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime)
    show_interim_results: Mapped[bool] = mapped_column(default=False)
    visibility: Mapped[str] = mapped_column(String(16))  # public | roll | password | qr | gps
    password_hash: Mapped[str | None] = mapped_column(String(256))
    qr_token_hash: Mapped[str | None] = mapped_column(String(64))
    gps_latitude: Mapped[float | None]
    gps_longitude: Mapped[float | None]
    gps_radius_m: Mapped[int | None]
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ledger_size: Mapped[int] = mapped_column(default=0)  # leaves appended; changed under the poll's row lock
    # Canonical JSON of what checkpoints sign about the poll (question, options, window, rule); fixed at the first.
    ledger_statement: Mapped[str | None] = mapped_column(Text)
    options: Mapped[list[PollOption]] = relationship(order_by="PollOption.position", viewonly=True)


class PollOption(Base):
    """One choice of a poll, numbered from 1 (the number is what a ballot's leaf records)."""

    __tablename__ = "poll_options"
    __table_args__ = (UniqueConstraint("poll_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id"), index=True)
    position: Mapped[int]
    label: Mapped[str] = mapped_column(Text)


class ElectoralRollEntry(Base):
    """A phone number allowed to vote in a restricted poll, kept only as the keyed blind index."""

    __tablename__ = "electoral_roll"

    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id"), primary_key=True)
    phone_index: Mapped[str] = mapped_column(String(64), primary_key=True)


class PollVoter(Base):
    """Who has voted in a poll: its primary key is what makes it one phone one ballot.

    `voter_index` is an HMAC of the phone number scoped to the poll, so voters cannot be joined to
    citizens or across polls without the key. Inserted with ON CONFLICT DO NOTHING, so the unique key
    alone, not a lookup the planner might get wrong, decides who is new.
    """

    __tablename__ = "poll_voters"

    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id"), primary_key=True)
    voter_index: Mapped[str] = mapped_column(String(64), primary_key=True)
    receipt_id: Mapped[str] = mapped_column(String(32), unique=True)
    voted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Ballot(Base):
    """One vote as logged: `leaf` is the exact canonical JSON in the poll's Merkle log, at `leaf_index`."""

    __tablename__ = "ballots"
    __table_args__ = (UniqueConstraint("poll_id", "leaf_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id"))
    receipt_id: Mapped[str] = mapped_column(String(32), unique=True)
    option_position: Mapped[int]
    leaf_index: Mapped[int]
    leaf: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))
    cast_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerNode(Base):
    """The hash of a perfect subtree of a poll's Merkle log (level 0 = leaf hashes)."""

    __tablename__ = "ledger_nodes"

    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id"), primary_key=True)
    level: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LedgerCheckpoint(Base):
    """A signed tree head of a poll's log; every one is kept, so any two can be proven consistent."""

    __tablename__ = "ledger_checkpoints"
    __table_args__ = (Index("ix_ledger_checkpoints_poll_size", "poll_id", "size"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id"))
    size: Mapped[int]
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    timestamp: Mapped[str] = mapped_column(String(20))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))
    final: Mapped[bool] = mapped_column(default=False)  # signed at close
    note: Mapped[str | None] = mapped_column(Text)  # the C2SP signed note; None on rows from before notes


class VerificationCode(Base):
    """An SMS code proving a phone number for the public vote page; only its hash is stored."""

    __tablename__ = "verification_codes"
    __table_args__ = (Index("ix_verification_codes_phone_created", "phone_index", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_index: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(64))  # e.g. "poll:<public_id>"
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsoleUser(Base):
    """A person who works in the operator console: a 120 operator, a department's official, or an admin."""

    __tablename__ = "console_users"
    __table_args__ = (
        CheckConstraint("role IN ('operator', 'official', 'admin')", name="role"),
        # An official acts for exactly one department; the database refuses one without it.
        CheckConstraint("role <> 'official' OR department_id IS NOT NULL", name="official_department"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # lower-cased by civic.console_accounts
    password_hash: Mapped[str] = mapped_column(String(256))  # Argon2id, PHC string
    role: Mapped[str] = mapped_column(String(16))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    department: Mapped[Department | None] = relationship()
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The operator's desk line, where a caller taken from the phone queue is bridged; encrypted like citizens'.
    desk_phone_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)


class ConsoleSession(Base):
    """A logged-in console browser. The id is the SHA-256 of the cookie's token; the token is never stored."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id"), index=True)
    csrf_secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(256))


class RateLimitCounter(Base):
    """Hits of one key in one window of a shared rate limit (civic.rate_limits); the key is an HMAC, never raw."""

    __tablename__ = "rate_limit_counters"

    bucket: Mapped[str] = mapped_column(String(48), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # epoch // per_seconds
    count: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class LoginAttempt(Base):
    """One console login attempt, counted by email and by client address to throttle password guessing."""

    __tablename__ = "console_login_attempts"
    __table_args__ = (
        Index("ix_console_login_attempts_email_at", "email", "at"),
        Index("ix_console_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str] = mapped_column(String(45))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    succeeded: Mapped[bool] = mapped_column(default=False)


class AuditEntry(Base):
    """One console action (who, what, when, from where); append-only, nothing updates or deletes it."""

    __tablename__ = "console_audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("console_users.id"), index=True)
    actor: Mapped[str] = mapped_column(String(254))  # the email at the time, or "anonymous" / "cli"
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(45))


class CaseFollower(Base):
    """A conversation told about a case it did not file: the citizen of a duplicate merged into it."""

    __tablename__ = "case_followers"
    __table_args__ = (UniqueConstraint("case_id", "conversation_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))  # leads the unique index, so no index of its own
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    language: Mapped[str] = mapped_column(String(8), default="ko")  # the duplicate's language: the follower's notices
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CaseFeedback(Base):
    """The "fixed?" question one resolution asked one conversation (the filer's or a follower's), and the answer."""

    __tablename__ = "case_feedback"
    __table_args__ = (
        UniqueConstraint("event_id", "conversation_id"),
        # The daily sweep of questions left unanswered (civic.feedback.close_unanswered).
        Index("ix_case_feedback_state_asked", "state", "asked_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("case_events.id"))  # the resolution asked about
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    language: Mapped[str] = mapped_column(String(8), default="ko")
    # asked → awaiting_note ("아직이에요") → reopened | asked → awaiting_rating ("해결됐어요") → rated | closed
    state: Mapped[str] = mapped_column(String(16))
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rating: Mapped[int | None]
    comment: Mapped[str | None] = mapped_column(Text)


class CannedAnswer(Base):
    """A ready answer an operator inserts into a live conversation, in one language."""

    __tablename__ = "canned_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    language: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RoutingOverride(Base):
    """An admin's change to the routing table (data/routing.yml): this category in this gu goes to this department."""

    __tablename__ = "routing_overrides"

    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    district: Mapped[str] = mapped_column(String(16), primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CategoryDeadline(Base):
    """An admin's processing period for a category in working days, replacing data/categories.yml's."""

    __tablename__ = "category_deadlines"

    category: Mapped[str] = mapped_column(String(32), primary_key=True)
    days: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    """A key an Open311 client posts requests with; only the SHA-256 of the key is stored (civic.api_keys)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))  # the key's first characters, to tell keys apart in lists
    rate_limit_per_minute: Mapped[int] = mapped_column(default=60)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(254))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
