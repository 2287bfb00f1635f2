"""Backups of the SQLite store and the media directory, and restoring them.

.venv/bin/python -m civic.backup create [--into var/backups]   (`make backup`)
.venv/bin/python -m civic.backup restore var/backups/civic-20261125T101500Z.db   (`make restore FILE=…`)

A backup is two files: civic-<UTC time>.db, a consistent copy taken with SQLite's online backup API while the
app keeps running, and civic-<UTC time>.media.tar.gz beside it with the photos and call audio. Restoring
replaces both the database and the media directory; stop the web app first. PostgreSQL is backed up with its
own tools (`pg_dump -Fc`, `pg_restore`; see the README), the media directory the same way as here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tarfile
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from civic.db import utcnow
from civic.settings import PROJECT_ROOT, get_settings

BACKUP_DIR = PROJECT_ROOT / "var" / "backups"
DATABASE_SUFFIX = ".db"
MEDIA_SUFFIX = ".media.tar.gz"


class BackupError(Exception):
    """A backup or restore refused before it changed anything."""


@dataclass(frozen=True)
class Backup:
    database: Path
    media: Path


def sqlite_path(database_url: str) -> Path:
    """The file of a SQLite database URL; BackupError for anything else."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            f"{url.get_backend_name()} is backed up with its own tools: pg_dump -Fc and pg_restore (see the README)"
        )
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up")
    return Path(url.database)


def media_archive_of(database_backup: Path) -> Path:
    """The media archive that belongs with a database backup: civic-X.db → civic-X.media.tar.gz."""
    return database_backup.with_name(database_backup.name.removesuffix(DATABASE_SUFFIX) + MEDIA_SUFFIX)


def _check_database(path: Path) -> None:
    """Refuses a file that is not a whole SQLite database (truncated, overwritten, not SQLite at all)."""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            result = connection.execute("PRAGMA integrity_check").fetchone()
    except sqlite3.DatabaseError as error:
        raise BackupError(f"{path} is not a usable SQLite database: {error}") from None
    if result is None or result[0] != "ok":
        raise BackupError(f"{path} failed SQLite's integrity check: {result}")


def _copy_database(source: Path, target: Path) -> None:
    """Copies a live database page by page with SQLite's backup API: a consistent snapshot, writers keep going."""
    target.unlink(missing_ok=True)
    # Opened read-write although only read: a read-only connection to a WAL database cannot create its -shm.
    with closing(sqlite3.connect(source)) as origin, closing(sqlite3.connect(target)) as copy:
        origin.backup(copy)
        # One self-contained file: no -wal beside it (the app turns WAL on again when it connects).
        copy.execute("PRAGMA journal_mode=DELETE")


def backup(*, database_url: str, media_dir: Path, into: Path = BACKUP_DIR, now: datetime | None = None) -> Backup:
    """Writes civic-<UTC time>.db and .media.tar.gz into `into`; each appears only once complete."""
    source = sqlite_path(database_url)
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%SZ")
    into.mkdir(parents=True, exist_ok=True)
    result = Backup(into / f"civic-{stamp}{DATABASE_SUFFIX}", into / f"civic-{stamp}{MEDIA_SUFFIX}")
    if result.database.exists() or result.media.exists():
        raise BackupError(f"{result.database.name} exists already")
    # Written under a temporary name and renamed at the end, so a half-written backup never looks like one.
    partial_db = result.database.with_name(result.database.name + ".partial")
    _copy_database(source, partial_db)
    _check_database(partial_db)
    partial_media = result.media.with_name(result.media.name + ".partial")
    with tarfile.open(partial_media, "w:gz") as archive:
        if media_dir.is_dir():
            for entry in sorted(media_dir.iterdir()):
                archive.add(entry, arcname=entry.name)
    os.replace(partial_media, result.media)
    os.replace(partial_db, result.database)
    return result


def restore(database_backup: Path, *, database_url: str, media_dir: Path) -> None:
    """Replaces the database and the media directory with a backup's; both are checked before either is touched."""
    if not database_backup.is_file():
        raise BackupError(f"no backup at {database_backup}")
    archive = media_archive_of(database_backup)
    if not archive.is_file():
        raise BackupError(f"the media archive {archive.name} is missing beside {database_backup.name}")
    target = sqlite_path(database_url)
    _check_database(database_backup)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged_db = target.with_name(target.name + ".restoring")
    _copy_database(database_backup, staged_db)
    staged_media = media_dir.with_name(media_dir.name + ".restoring")
    shutil.rmtree(staged_media, ignore_errors=True)
    staged_media.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:gz") as media:
            # The "data" filter refuses absolute paths, "..", links out of the directory and device files.
            media.extractall(staged_media, filter="data")
    except (tarfile.TarError, OSError) as error:
        shutil.rmtree(staged_media, ignore_errors=True)
        staged_db.unlink(missing_ok=True)
        raise BackupError(f"{archive.name} cannot be restored: {error}") from None
    # The old database's WAL must go with it: SQLite would otherwise replay it onto the restored file.
    for leftover in ("-wal", "-shm"):
        Path(f"{target}{leftover}").unlink(missing_ok=True)
    os.replace(staged_db, target)
    replaced = media_dir.with_name(media_dir.name + ".replaced")
    shutil.rmtree(replaced, ignore_errors=True)
    if media_dir.exists():
        media_dir.rename(replaced)
    staged_media.rename(media_dir)
    shutil.rmtree(replaced, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m civic.backup", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="back up the database and the media directory")
    create.add_argument("--into", type=Path, default=BACKUP_DIR, help="folder of the backups (default var/backups)")
    undo = commands.add_parser("restore", help="replace the database and the media with a backup (stop the app first)")
    undo.add_argument("file", type=Path, help="the backup's .db file; its .media.tar.gz must lie beside it")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        if args.command == "create":
            made = backup(database_url=settings.database_url, media_dir=settings.media_dir, into=args.into)
            print(f"{made.database}\n{made.media}")
        else:
            restore(args.file, database_url=settings.database_url, media_dir=settings.media_dir)
            print(f"restored {args.file} and {media_archive_of(args.file).name}")
    except BackupError as refusal:
        print(f"refused: {refusal}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
