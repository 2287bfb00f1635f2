"""`make backup` / `make restore` on SQLite: cases and their photos survive deletion and a corrupted file.

This tests the SQLite tool, so it always runs on a SQLite file of its own, also in the PostgreSQL run.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from civic import backup as backups
from civic.backup import BackupError, backup, media_archive_of, restore
from civic.cases import file_case
from civic.conversations import get_or_create_conversation
from civic.db import make_engine, make_session_factory, session_scope
from civic.media import media_path, store_photo
from civic.migrate import upgrade
from civic.models import Attachment, Case, CaseEvent
from civic.settings import get_settings

CATEGORIES = ("illegal_parking", "broken_sidewalk", "broken_streetlight", "noise")
DISTRICTS = ("마포구", "송파구", "강남구", "종로구")


@dataclass
class Store:
    url: str
    file: Path
    media: Path
    backups: Path
    factory: sessionmaker[Session]


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A migrated SQLite file and a media directory of their own, whatever DATABASE_URL says."""
    file, media = tmp_path / "civic.db", tmp_path / "media"
    url = f"sqlite:///{file}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("MEDIA_DIR", str(media))
    get_settings.cache_clear()
    upgrade(url)
    engine = make_engine(url)
    yield Store(url, file, media, tmp_path / "backups", make_session_factory(engine))
    engine.dispose()
    get_settings.cache_clear()


def photo_bytes(number: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes([number]) * (1000 + number)


def file_cases(store: Store, count: int, start: int = 0) -> dict[str, str]:
    """Files `count` cases with a photo each; their numbers → the photo's SHA-256."""
    filed = {}
    with session_scope(store.factory) as session:
        for index in range(start, start + count):
            conversation = get_or_create_conversation(session, channel="web", external_id=f"backup-test-{index}")
            attachment = store_photo(session, conversation_id=conversation.id, content=photo_bytes(index))
            case = file_case(
                session,
                category=CATEGORIES[index % len(CATEGORIES)],
                district=DISTRICTS[index % len(DISTRICTS)],
                place=f"{index}번 출구 앞",
                description=f"신고 {index}",
                channel="web",
                conversation_id=conversation.id,
                attachment_ids=[attachment.id],
            )
            filed[case.number] = attachment.sha256
    return filed


def found(store: Store) -> dict[str, str]:
    """Every case in the store → the SHA-256 of its photo's bytes as read back from the media directory."""
    with session_scope(store.factory) as session:
        rows = session.execute(select(Case, Attachment).join(Attachment, Attachment.case_id == Case.id)).all()
        return {case.number: hashlib.sha256(media_path(photo).read_bytes()).hexdigest() for case, photo in rows}


def test_backup_then_restore_after_deletion_and_after_corruption(store: Store) -> None:
    filed = file_cases(store, 4)
    assert found(store) == filed

    made = backup(database_url=store.url, media_dir=store.media, into=store.backups)

    assert made.database.name.startswith("civic-") and made.database.suffix == ".db"
    assert made.media == media_archive_of(made.database) and made.media.is_file()
    later = file_cases(store, 1, start=10)  # filed after the backup: gone once it is restored
    with session_scope(store.factory) as session:
        session.execute(delete(CaseEvent))
        session.execute(delete(Attachment))
        session.execute(delete(Case))
    shutil.rmtree(store.media)
    assert found(store) == {}
    store.factory.kw["bind"].dispose()  # the app is stopped for a restore

    restore(made.database, database_url=store.url, media_dir=store.media)

    assert found(store) == filed
    assert not set(later) & set(found(store))

    # Now the database file itself is destroyed while the app is stopped.
    store.factory.kw["bind"].dispose()
    store.file.write_bytes(b"not a database" * 1000)
    with pytest.raises(sqlite3.DatabaseError), closing(sqlite3.connect(store.file)) as broken:
        broken.execute("SELECT count(*) FROM cases").fetchone()

    restore(made.database, database_url=store.url, media_dir=store.media)

    assert found(store) == filed
    assert not Path(f"{store.file}.restoring").exists() and not store.media.with_name("media.replaced").exists()


def test_restore_refuses_what_it_cannot_restore_and_changes_nothing(store: Store) -> None:
    filed = file_cases(store, 2)
    made = backup(database_url=store.url, media_dir=store.media, into=store.backups)

    with pytest.raises(BackupError, match="no backup"):
        restore(store.backups / "civic-19990101T000000Z.db", database_url=store.url, media_dir=store.media)
    corrupt = store.backups / "civic-19990101T000001Z.db"
    corrupt.write_bytes(b"\x00" * 4096)
    shutil.copy(made.media, media_archive_of(corrupt))
    with pytest.raises(BackupError, match=r"not a usable SQLite database|integrity"):
        restore(corrupt, database_url=store.url, media_dir=store.media)
    lonely = store.backups / "civic-19990101T000002Z.db"
    shutil.copy(made.database, lonely)
    with pytest.raises(BackupError, match="media archive"):
        restore(lonely, database_url=store.url, media_dir=store.media)
    with pytest.raises(BackupError, match="pg_dump"):
        backup(database_url="postgresql://postgres@127.0.0.1/test", media_dir=store.media, into=store.backups)
    with pytest.raises(BackupError, match="exists already"):
        backup(database_url=store.url, media_dir=store.media, into=store.backups, now=stamp_of(made.database))
    assert found(store) == filed


def test_cli_backs_up_the_configured_store(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    filed = file_cases(store, 1)
    assert backups.main(["create", "--into", str(store.backups)]) == 0
    database, media = (Path(line) for line in capsys.readouterr().out.split())
    assert media == media_archive_of(database) and database.parent == store.backups
    assert backups.main(["restore", str(store.backups / "civic-missing.db")]) == 1
    assert "refused: no backup" in capsys.readouterr().err
    store.factory.kw["bind"].dispose()
    assert backups.main(["restore", str(database)]) == 0
    assert found(store) == filed


def stamp_of(database_backup: Path) -> datetime:
    return datetime.strptime(database_backup.stem.removeprefix("civic-"), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
