"""The media store: citizens' photos on disk under settings.media_dir, described by Attachment rows."""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

from sqlalchemy.orm import Session

from civic.models import Attachment
from civic.settings import get_settings

# Magic numbers, not the client's Content-Type, decide what a file is.
IMAGE_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"WEBP", 8, "image/webp"),
)


FOLDERS = {"photo": "photos", "audio": "audio"}
# An attachment row whose file civic.retention deleted keeps its hash and size, with this path.
PURGED_PATH = ""
# What _store names files and rows: uuid4().hex. Anything else in a URL is no attachment.
ATTACHMENT_ID = re.compile(r"[0-9a-f]{32}")


class UnsupportedMedia(ValueError):
    """Not a JPEG, PNG or WebP image, or too large."""


def is_attachment_id(value: str) -> bool:
    return ATTACHMENT_ID.fullmatch(value) is not None


def sniff_image_type(head: bytes) -> str | None:
    for signature, offset, content_type in IMAGE_SIGNATURES:
        # WebP's tag sits at offset 8 inside a RIFF container.
        if head[offset : offset + len(signature)] == signature and (
            content_type != "image/webp" or head[:4] == b"RIFF"
        ):
            return content_type
    return None


def _store(
    session: Session, *, conversation_id: int, kind: str, content_type: str, extension: str, content: bytes
) -> Attachment:
    """Writes the file under a random name and records it; a client's file name is never used."""
    attachment_id = uuid.uuid4().hex
    relative = Path(FOLDERS[kind]) / attachment_id[:2] / f"{attachment_id}.{extension}"
    target = get_settings().media_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    attachment = Attachment(
        id=attachment_id,
        conversation_id=conversation_id,
        kind=kind,
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        path=str(relative),
    )
    session.add(attachment)
    session.flush()
    return attachment


def store_photo(session: Session, *, conversation_id: int, content: bytes, max_bytes: int | None = None) -> Attachment:
    """Keeps a citizen's photo: JPEG, PNG or WebP by magic number, within the size limit."""
    limit = max_bytes or get_settings().max_upload_bytes
    content_type = sniff_image_type(content[:16])
    if content_type is None or not content or len(content) > limit:
        raise UnsupportedMedia("only JPEG, PNG or WebP photos within the size limit")
    return _store(
        session,
        conversation_id=conversation_id,
        kind="photo",
        content_type=content_type,
        extension=content_type.split("/")[1],
        content=content,
    )


def store_audio(session: Session, *, conversation_id: int, wav: bytes) -> Attachment:
    """Keeps a caller's recorded turn (a WAV we made ourselves) for the operator who reads the case."""
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise UnsupportedMedia("only WAV recordings")
    return _store(
        session, conversation_id=conversation_id, kind="audio", content_type="audio/wav", extension="wav", content=wav
    )


def media_path(attachment: Attachment) -> Path:
    """Absolute path of a stored file, refusing anything that would leave the media directory (or a purged file)."""
    if attachment.path == PURGED_PATH:
        raise UnsupportedMedia("attachment purged after its retention period")
    root = get_settings().media_dir.resolve()
    path = (root / attachment.path).resolve()
    if root not in path.parents:
        raise UnsupportedMedia("attachment path outside the media store")
    return path
