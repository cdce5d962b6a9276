"""Configuration: the only place that reads the environment.

`from_environment()` turns environment variables into a plain dict for `create_app`. In production
(the default) a missing secret stops startup; `GOTV_ENV=development` fills in local defaults so
`scripts/run` works on a fresh machine. Tests pass their own dict and never touch the environment.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from typing import Any

TWILIO_API_URL = "https://api.twilio.com"
TWILIO_MESSAGING_URL = "https://messaging.twilio.com"
# The largest request body gotv reads (voter files of a million rows run to 100 MB or so).
DEFAULT_UPLOAD_LIMIT = 256 * 1024 * 1024


class ConfigError(RuntimeError):
    """Raised when the environment cannot produce a working configuration."""


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read gotv's configuration from `environ` (default: os.environ).

    :raise ConfigError: when a production secret is missing or a value cannot be parsed.
    """
    env = os.environ if environ is None else environ
    mode = env.get("GOTV_ENV", "production")
    if mode not in ("production", "development"):
        raise ConfigError(f"GOTV_ENV must be 'production' or 'development', not {mode!r}")
    production = mode == "production"

    def setting(name: str, development_default: str | None = None) -> str | None:
        value = env.get(name, "").strip()
        if value:
            return value
        return None if production else development_default

    config: dict[str, Any] = {
        "ENV_NAME": mode,
        "SECRET_KEY": setting("SECRET_KEY"),
        # Keys that encrypt secrets at rest (gotv/encryption.py), comma-separated, newest first.
        "ENCRYPTION_KEYS": parse_list(setting("ENCRYPTION_KEYS")),
        "SQLALCHEMY_DATABASE_URI": normalize_database_url(
            setting("DATABASE_URL", "sqlite:///" + os.path.abspath(".gotv/gotv.sqlite3"))
        ),
        "REDIS_URL": setting("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "PUBLIC_URL": setting("PUBLIC_URL", "http://127.0.0.1:5000"),
        "TWILIO_ACCOUNT_SID": setting("TWILIO_ACCOUNT_SID"),
        "TWILIO_AUTH_TOKEN": setting("TWILIO_AUTH_TOKEN"),
        "TWILIO_MESSAGING_SERVICE_SID": setting("TWILIO_MESSAGING_SERVICE_SID"),
        "TWILIO_FROM_NUMBER": setting("TWILIO_FROM_NUMBER"),
        "TWILIO_API_URL": setting("TWILIO_API_URL") or TWILIO_API_URL,
        "TWILIO_MESSAGING_URL": setting("TWILIO_MESSAGING_URL"),
        # The instance's Twilio account's limits, across every worker (organizations' own
        # accounts set theirs on their settings page): requests in flight at once (Twilio
        # answers 429 past its concurrency limit), messages per second, messages per day.
        "TWILIO_CONCURRENCY": parse_int(
            "TWILIO_CONCURRENCY", env.get("TWILIO_CONCURRENCY", "").strip() or "100"
        ),
        "TWILIO_MESSAGES_PER_SECOND": parse_float(
            "TWILIO_MESSAGES_PER_SECOND", env.get("TWILIO_MESSAGES_PER_SECOND", "").strip()
        ),
        "TWILIO_DAILY_CAP": parse_int(
            "TWILIO_DAILY_CAP", env.get("TWILIO_DAILY_CAP", "").strip() or "0"
        )
        or None,
        "DEFAULT_REGION": setting("DEFAULT_REGION") or "US",
        # Where uploaded voter lists wait for the mapping step and the import worker
        # (gotv/edge/storage.py): in PostgreSQL itself, in S3-compatible object storage, or
        # (the embedded SQLite default only) in a local folder. Every web and worker host
        # must reach them; see upload_settings.
        **upload_settings(env, setting),
        # Proxies in front of gotv that set X-Forwarded-For/-Proto/-Host/-Port: 0 (the default)
        # trusts none of those headers (docs/deploy.md, "Proxies and TLS").
        "PROXY_COUNT": parse_int("PROXY_COUNT", env.get("PROXY_COUNT", "").strip() or "0"),
        # The largest request body, in MB: an upload past it is refused before it is read.
        "MAX_CONTENT_LENGTH": parse_int(
            "MAX_UPLOAD_MB", env.get("MAX_UPLOAD_MB", "").strip() or "256"
        )
        * 1024
        * 1024,
        # Requests to Twilio each worker keeps in flight. Twilio limits an account's concurrent
        # API requests (about 100 by default; more answer 429).
        "SEND_CONCURRENCY": parse_int(
            "SEND_CONCURRENCY", env.get("SEND_CONCURRENCY", "").strip() or "100"
        ),
        "LOG_LEVEL": (setting("LOG_LEVEL") or "INFO").upper(),
        # One JSON object a line in production (for a log collector), readable text otherwise.
        "LOG_FORMAT": setting("LOG_FORMAT") or ("json" if production else "text"),
        "SENTRY_DSN": setting("SENTRY_DSN"),
        # Bearer token /metrics asks for; without one, /metrics is not served.
        "METRICS_TOKEN": setting("METRICS_TOKEN"),
        "PROMETHEUS_MULTIPROC_DIR": multiprocess_dir(env),
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
        # Connections each process keeps open, at most (see gotv/db.py). SQLAlchemy's default
        # of 5 and its overflow are too few for a busy web process: its threads then open and
        # close connections on every request, each a new PostgreSQL backend (docs/benchmarks.md,
        # webhooks).
        "DATABASE_POOL_SIZE": parse_int(
            "DATABASE_POOL_SIZE", env.get("DATABASE_POOL_SIZE", "").strip() or "15"
        ),
        # Live event streams each web process holds at once (gotv/texting/live.py). A web process's
        # threads (WEB_THREADS in the Procfile) are these and its requests running at once,
        # one for each database connection (gotv/web/admission.py): keep WEB_THREADS at least
        # LIVE_STREAMS_PER_PROCESS + DATABASE_POOL_SIZE.
        "LIVE_STREAMS_PER_PROCESS": parse_int(
            "LIVE_STREAMS_PER_PROCESS", env.get("LIVE_STREAMS_PER_PROCESS", "").strip() or "96"
        ),
        # Of those, how many one user's pages may hold, and one organization's (0: the
        # defaults of gotv/texting/live.py, 4 and three quarters of the process's).
        "LIVE_STREAMS_PER_USER": parse_int(
            "LIVE_STREAMS_PER_USER", env.get("LIVE_STREAMS_PER_USER", "").strip() or "0"
        ),
        "LIVE_STREAMS_PER_ORGANIZATION": parse_int(
            "LIVE_STREAMS_PER_ORGANIZATION",
            env.get("LIVE_STREAMS_PER_ORGANIZATION", "").strip() or "0",
        ),
        # CSV downloads each web process streams at once, each on a database connection of its
        # own on top of DATABASE_POOL_SIZE (gotv/web/admission.py); past it, 503 + Retry-After.
        "EXPORTS_PER_PROCESS": parse_int(
            "EXPORTS_PER_PROCESS", env.get("EXPORTS_PER_PROCESS", "").strip() or "2"
        ),
    }
    check(config)
    return config


UPLOAD_STORAGES = ("database", "s3", "local")


def upload_settings(env: Mapping[str, str], setting: Any) -> dict[str, Any]:
    """UPLOAD_STORAGE and what it needs. The default: PostgreSQL itself when DATABASE_URL is
    PostgreSQL, else (the embedded SQLite default) the local folder UPLOAD_DIR."""
    database_url = setting("DATABASE_URL", "sqlite:") or ""
    default = "database" if database_url.startswith("postgres") else "local"
    return {
        "UPLOAD_STORAGE": setting("UPLOAD_STORAGE") or default,
        "UPLOAD_DIR": setting("UPLOAD_DIR", os.path.abspath(".gotv/uploads")),
        "UPLOAD_S3_BUCKET": setting("UPLOAD_S3_BUCKET"),
        "UPLOAD_S3_PREFIX": setting("UPLOAD_S3_PREFIX") or "uploads/",
        "UPLOAD_S3_ENDPOINT_URL": setting("UPLOAD_S3_ENDPOINT_URL"),
        "UPLOAD_S3_REGION": setting("UPLOAD_S3_REGION"),
        "UPLOAD_S3_ACCESS_KEY_ID": setting("UPLOAD_S3_ACCESS_KEY_ID"),
        "UPLOAD_S3_SECRET_ACCESS_KEY": setting("UPLOAD_S3_SECRET_ACCESS_KEY"),
        # An upload left at the mapping step is deleted after this many hours (it holds
        # voters' numbers and names: keep it no longer than an organizer needs).
        "UPLOAD_EXPIRY_HOURS": parse_int(
            "UPLOAD_EXPIRY_HOURS", env.get("UPLOAD_EXPIRY_HOURS", "").strip() or "24"
        ),
    }


REQUIRED = (
    "SECRET_KEY",
    "ENCRYPTION_KEYS",
    "SQLALCHEMY_DATABASE_URI",
    "REDIS_URL",
    "PUBLIC_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
)


def check(config: Mapping[str, Any]) -> None:
    """Fail loudly on a configuration that cannot send texts safely.

    :raise ConfigError: naming every missing setting at once.
    """
    missing = [name for name in REQUIRED if not config.get(name)]
    if not (config.get("TWILIO_MESSAGING_SERVICE_SID") or config.get("TWILIO_FROM_NUMBER")):
        missing.append("TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER")
    for position, key in enumerate(config.get("ENCRYPTION_KEYS") or (), start=1):
        if not is_fernet_key(key):
            raise ConfigError(
                f"ENCRYPTION_KEYS: key {position} is not a Fernet key (32 url-safe base64 "
                "bytes): make one with `python -m gotv.encryption`"
            )
    check_uploads(config)
    if missing:
        names = ", ".join(
            "DATABASE_URL" if name == "SQLALCHEMY_DATABASE_URI" else name for name in missing
        )
        raise ConfigError(f"gotv cannot start: missing configuration: {names}")


def check_uploads(config: Mapping[str, Any]) -> None:
    """Refuse an upload storage that some host could not read.

    :raise ConfigError: for an unknown UPLOAD_STORAGE, S3 without a bucket, a local folder with
        a database other than SQLite (with PostgreSQL there may be other hosts), or PostgreSQL
        storage without PostgreSQL.
    """
    storage = config.get("UPLOAD_STORAGE")
    if storage is None:  # a config given whole (the tests'): gotv/edge/storage.py picks
        return
    database = str(config.get("SQLALCHEMY_DATABASE_URI") or "")
    if storage not in UPLOAD_STORAGES:
        raise ConfigError(f"UPLOAD_STORAGE must be one of {', '.join(UPLOAD_STORAGES)}")
    if storage == "s3" and not config.get("UPLOAD_S3_BUCKET"):
        raise ConfigError("UPLOAD_STORAGE=s3 needs UPLOAD_S3_BUCKET")
    if storage == "local" and database and not database.startswith("sqlite"):
        raise ConfigError(
            "UPLOAD_STORAGE=local keeps uploads on one host's disk, which only the embedded "
            "SQLite setup may do: use database (the default with PostgreSQL) or s3"
        )
    if storage == "database" and database and not database.startswith("postgresql"):
        raise ConfigError("UPLOAD_STORAGE=database needs a PostgreSQL DATABASE_URL")


def is_fernet_key(key: str) -> bool:
    """True for 32 bytes in url-safe base64, as Fernet keys are."""
    try:
        return len(base64.urlsafe_b64decode(key.encode())) == 32
    except (ValueError, binascii.Error):
        return False


def normalize_database_url(url: str | None) -> str | None:
    """Point postgres:// and postgresql:// URLs at the psycopg 3 driver."""
    if url is None:
        return None
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def multiprocess_dir(environ: Mapping[str, str] | None = None) -> str | None:
    """PROMETHEUS_MULTIPROC_DIR: the folder where this host's processes write their metrics
    for /metrics to sum (prometheus_client reads it too, when it is imported)."""
    env = os.environ if environ is None else environ
    return env.get("PROMETHEUS_MULTIPROC_DIR", "").strip() or None


def messaging_url(config: Mapping[str, Any]) -> str:
    """Where the Messaging API is: TWILIO_MESSAGING_URL, else Twilio's own host, except when
    TWILIO_API_URL points elsewhere (a Twilio-compatible server such as the fake carrier, which
    serves both APIs)."""
    given = config.get("TWILIO_MESSAGING_URL")
    if given:
        return str(given)
    api_url = str(config.get("TWILIO_API_URL") or TWILIO_API_URL)
    return TWILIO_MESSAGING_URL if api_url.rstrip("/") == TWILIO_API_URL else api_url


def parse_float(name: str, value: str) -> float | None:
    """Parse a positive number setting ("" for none), naming it in the error."""
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise ConfigError(f"{name} must be a positive number, not {value!r}")
    return number


def parse_list(value: str | None) -> list[str]:
    """A comma-separated setting as a list, blanks left out."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def parse_int(name: str, value: str) -> int:
    """Parse a whole-number setting (0 or more), naming it in the error."""
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise ConfigError(f"{name} must be a whole number, not {value!r}")
    return number
