"""Uploaded voter lists, kept where every web and worker host can read them.

One host accepts an upload, another shows its mapping page, a worker somewhere else loads it:
an upload must not live on one machine's disk. `uploads()` is the current app's store, chosen
by UPLOAD_STORAGE (gotv/config.py):

- **database** (the default with PostgreSQL): PostgreSQL itself, in an ordinary table of 1 MiB
  chunks (`stored_upload`, `stored_upload_chunk`) rather than large objects. Either streams a
  100 MB file in and out a chunk at a time, with one round trip per chunk (psycopg 3 has no
  large-object API of its own: both go through SQL). The table wins on everything around that:
  deleting an upload's row deletes its chunks (ON DELETE CASCADE), where a large object outlives
  a forgotten `lo_unlink` until someone runs vacuumlo; dead chunks are reclaimed by autovacuum
  like any table's (large objects pile up in the pg_largeobject catalog); it needs no grants
  beyond the app's own tables, and pg_dump and logical replication (which skips large objects)
  carry it like the rest of the data.
- **s3**: an S3-compatible object store (AWS S3, MinIO, R2...) through boto3.
- **local**: a folder (UPLOAD_DIR), only for the embedded SQLite setup of `scripts/run`, whose
  web and worker share one machine.

The store is an outside service, like Redis: what it saves is kept at once, whatever becomes of
the caller's database transaction, so a caller that fails after `save` deletes what it saved,
and `expire_uploads` (gotv/lists/imports.py) deletes what nobody claimed. The database store
uses connections of its own (at most STORE_CONNECTIONS per process), never the pool that
requests take turns for: a request holding one of those could wait on another forever.
"""

from __future__ import annotations

import io
import os
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any, Protocol

from flask import Flask, current_app
from sqlalchemy import Engine, create_engine, text

CHUNK_BYTES = 1024 * 1024  # what one read or write moves; about what memory holds of a file
STORE_CONNECTIONS = 2  # the database store's connections per process, on top of the pool's
READ_BUFFER_BYTES = 256 * 1024


class Readable(Protocol):
    """What `save` reads from: a file, a request's stream."""

    def read(self, size: int = -1, /) -> bytes: ...


class Uploads(Protocol):
    """Where uploads wait. Keys are made by `save` and are short, plain strings."""

    def save(self, stream: Readable) -> str:
        """Read `stream` to its end and keep it all under a new key, which it returns; on any
        error nothing is kept."""

    def open(self, key: str) -> IO[bytes]:
        """The upload as a buffered binary stream, read from the start; `tell()` is how far.

        :raise FileNotFoundError: when no upload has that key.
        """

    def delete(self, key: str) -> None:
        """Forget the upload; nothing happens when there is none."""

    def saved_before(self, when: datetime) -> list[str]:
        """The keys of every upload saved before `when` (for sweeping what nobody claimed)."""


def init_app(app: Flask) -> None:
    """Choose the app's upload store from its configuration (made when first used)."""
    app.extensions["gotv.uploads"] = None
    app.extensions["gotv.uploads.lock"] = threading.Lock()


def uploads() -> Uploads:
    """The current app's upload store."""
    if storage_kind(current_app.config) == "local":  # (nothing to keep: UPLOAD_DIR as it is now)
        return LocalUploads(current_app.config["UPLOAD_DIR"])
    extensions = current_app.extensions
    store: Uploads | None = extensions["gotv.uploads"]
    if store is None:
        with extensions["gotv.uploads.lock"]:
            store = extensions["gotv.uploads"] or make_store(current_app.config)
            extensions["gotv.uploads"] = store
    return store


def dispose(app: Flask) -> None:
    """Close the connections the app's store keeps (the database store's)."""
    store = app.extensions.get("gotv.uploads")
    if isinstance(store, DatabaseUploads) and store._engine is not None:
        store._engine.dispose()


def storage_kind(config: Any) -> str:
    """UPLOAD_STORAGE, or the default for the database (a config given whole may leave it out)."""
    kind = config.get("UPLOAD_STORAGE")
    if kind:
        return str(kind)
    database = str(config.get("SQLALCHEMY_DATABASE_URI") or "")
    return "database" if database.startswith("postgresql") else "local"


def make_store(config: Any) -> Uploads:
    kind = storage_kind(config)
    if kind == "database":
        return DatabaseUploads(config["SQLALCHEMY_DATABASE_URI"])
    if kind == "s3":
        return S3Uploads(
            bucket=config["UPLOAD_S3_BUCKET"],
            prefix=config.get("UPLOAD_S3_PREFIX") or "uploads/",
            endpoint_url=config.get("UPLOAD_S3_ENDPOINT_URL"),
            region=config.get("UPLOAD_S3_REGION"),
            access_key_id=config.get("UPLOAD_S3_ACCESS_KEY_ID"),
            secret_access_key=config.get("UPLOAD_S3_SECRET_ACCESS_KEY"),
        )
    return LocalUploads(config["UPLOAD_DIR"])


def new_key() -> str:
    return f"{uuid.uuid4().hex}.upload"


def utcnow() -> datetime:
    return datetime.now(UTC)


class ChunkReader(io.RawIOBase):
    """A readable raw stream over `next_chunk()`, which returns b"" at the end; counts bytes."""

    def __init__(self, next_chunk: Callable[[], bytes], close: Callable[[], None] = lambda: None):
        super().__init__()
        self.next_chunk = next_chunk
        self.on_close = close
        self.chunk = memoryview(b"")
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.chunk:
            self.chunk = memoryview(self.next_chunk())
        count = min(len(buffer), len(self.chunk))
        buffer[:count] = self.chunk[:count]
        self.chunk = self.chunk[count:]
        self.position += count
        return count

    def tell(self) -> int:
        return self.position

    def close(self) -> None:
        if not self.closed:
            self.on_close()
        super().close()


# --- A local folder (the embedded SQLite setup only) ------------------------------------------


class LocalUploads:
    """Files in one folder: only for a web and worker sharing one machine."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def path(self, key: str) -> str:
        # (basename: keys stored before this store existed were whole paths into the folder)
        return os.path.join(self.folder, os.path.basename(key))

    def save(self, stream: Readable) -> str:
        os.makedirs(self.folder, exist_ok=True)
        key = new_key()
        try:
            with open(self.path(key), "wb") as out:
                while chunk := stream.read(CHUNK_BYTES):
                    out.write(chunk)
        except BaseException:
            self.delete(key)
            raise
        return key

    def open(self, key: str) -> IO[bytes]:
        """Counting what was read rather than asking the file (the stores behave alike)."""
        file = open(self.path(key), "rb", buffering=0)
        reader = ChunkReader(lambda: file.read(CHUNK_BYTES), close=file.close)
        return io.BufferedReader(reader, READ_BUFFER_BYTES)

    def delete(self, key: str) -> None:
        try:
            os.remove(self.path(key))
        except FileNotFoundError:
            pass

    def saved_before(self, when: datetime) -> list[str]:
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        cutoff = when.timestamp()
        return [
            name
            for name in names
            if name.endswith(".upload") and os.path.getmtime(self.path(name)) < cutoff
        ]


# --- PostgreSQL itself ----------------------------------------------------------------------

SAVE_UPLOAD = text("INSERT INTO stored_upload (key, size, created_at) VALUES (:key, 0, :now)")
SAVE_CHUNK = text(
    "INSERT INTO stored_upload_chunk (key, position, data) VALUES (:key, :position, :data)"
)
SAVE_SIZE = text("UPDATE stored_upload SET size = :size WHERE key = :key")
FIND_UPLOAD = text("SELECT size FROM stored_upload WHERE key = :key")
READ_CHUNK = text("SELECT data FROM stored_upload_chunk WHERE key = :key AND position = :position")
DELETE_UPLOAD = text("DELETE FROM stored_upload WHERE key = :key")  # chunks: ON DELETE CASCADE
UPLOADS_BEFORE = text("SELECT key FROM stored_upload WHERE created_at < :when")


class DatabaseUploads:
    """Chunks of 1 MiB in PostgreSQL, on a small engine of the store's own (see the module)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None
        self.lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        with self.lock:  # made on first use: a process forked after create_app makes its own
            if self._engine is None:
                self._engine = create_engine(
                    self.url, pool_size=STORE_CONNECTIONS, max_overflow=0, pool_pre_ping=True
                )
            return self._engine

    def save(self, stream: Readable) -> str:
        """All in one transaction: an upload cut short leaves nothing."""
        key = new_key()
        with self.engine.begin() as connection:
            connection.execute(SAVE_UPLOAD, {"key": key, "now": utcnow()})
            size = position = 0
            while chunk := stream.read(CHUNK_BYTES):
                connection.execute(SAVE_CHUNK, {"key": key, "position": position, "data": chunk})
                size, position = size + len(chunk), position + 1
            connection.execute(SAVE_SIZE, {"key": key, "size": size})
        return key

    def open(self, key: str) -> IO[bytes]:
        """Each chunk is read in a query of its own, so no connection is held between reads:
        the importer keeps a COPY open on its own connection meanwhile."""
        with self.engine.connect() as connection:
            if connection.execute(FIND_UPLOAD, {"key": key}).first() is None:
                raise FileNotFoundError(f"no stored upload {key!r}")
        positions = iter(range(2**31))

        def next_chunk() -> bytes:
            with self.engine.connect() as connection:
                data = connection.execute(
                    READ_CHUNK, {"key": key, "position": next(positions)}
                ).scalar()
            return bytes(data) if data is not None else b""

        return io.BufferedReader(ChunkReader(next_chunk), READ_BUFFER_BYTES)

    def delete(self, key: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(DELETE_UPLOAD, {"key": key})

    def saved_before(self, when: datetime) -> list[str]:
        with self.engine.connect() as connection:
            return list(connection.execute(UPLOADS_BEFORE, {"when": when}).scalars())


# --- S3-compatible object storage ---------------------------------------------------------------


class S3Uploads:
    """Objects under `prefix` in an S3 bucket. Credentials: the settings when given, else
    boto3's own chain (an instance or task role, ~/.aws)."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        endpoint_url: str | None,
        region: str | None,
        access_key_id: str | None,
        secret_access_key: str | None,
    ) -> None:
        import boto3  # (only a deployment that stores uploads in S3 pays for importing it)
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(retries={"mode": "standard", "max_attempts": 5}),
        )
        # Parts of 8 MB sent one after another: one part in memory per upload, not ten.
        self.transfer = TransferConfig(use_threads=False)

    def save(self, stream: Readable) -> str:
        """A multipart upload for a big file, aborted (nothing kept) on any error."""
        key = new_key()
        self.client.upload_fileobj(stream, self.bucket, self.prefix + key, Config=self.transfer)
        return key

    def open(self, key: str) -> IO[bytes]:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(f"no stored upload {key!r}") from None
        reader = ChunkReader(lambda: body.read(CHUNK_BYTES), close=body.close)
        return io.BufferedReader(reader, READ_BUFFER_BYTES)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)

    def saved_before(self, when: datetime) -> list[str]:
        keys = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", ()):
                if item["LastModified"] < when:
                    keys.append(item["Key"][len(self.prefix) :])
        return keys
