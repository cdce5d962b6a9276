"""Configuration from the environment: production refuses to start on a missing secret."""

from __future__ import annotations

import pytest
from flask import Flask

from gotv import create_app
from gotv.config import ConfigError, from_environment

PRODUCTION = {
    "SECRET_KEY": "a-long-random-secret",
    "ENCRYPTION_KEYS": "7eNhgs-o2TXQ6xDvfXWsVL1Jb38-2C8nqjRq2XRtN8s=",
    "DATABASE_URL": "postgresql://gotv:pw@db.internal:5432/gotv",
    "REDIS_URL": "redis://redis.internal:6379/0",
    "PUBLIC_URL": "https://gotv.example.org",
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "twilio-token",
    "TWILIO_MESSAGING_SERVICE_SID": "MG" + "2" * 32,
}
DEVELOPMENT_SECRETS = {
    "GOTV_ENV": "development",
    "SECRET_KEY": "dev-secret",
    "ENCRYPTION_KEYS": "7eNhgs-o2TXQ6xDvfXWsVL1Jb38-2C8nqjRq2XRtN8s=",
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "twilio-token",
    "TWILIO_FROM_NUMBER": "+15005550006",
}


def without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {name: value for name, value in env.items() if name not in names}


def test_a_complete_production_environment_is_read() -> None:
    config = from_environment(PRODUCTION)

    assert config["ENV_NAME"] == "production"
    assert config["SECRET_KEY"] == "a-long-random-secret"
    assert config["TWILIO_MESSAGING_SERVICE_SID"] == "MG" + "2" * 32
    assert config["PROXY_COUNT"] == 0  # no proxy is trusted unless one is configured
    assert config["MAX_CONTENT_LENGTH"] == 256 * 1024 * 1024


def test_production_names_every_missing_variable_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        from_environment({})

    message = str(error.value)
    for name in (
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "PUBLIC_URL",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER",
    ):
        assert name in message


@pytest.mark.parametrize(
    "name", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "PUBLIC_URL", "TWILIO_AUTH_TOKEN"]
)
def test_production_refuses_to_start_without_one_variable(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        from_environment(without(PRODUCTION, name))


def test_production_treats_a_blank_secret_as_missing() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        from_environment({**PRODUCTION, "SECRET_KEY": "   "})


def test_production_needs_a_messaging_service_or_a_from_number() -> None:
    with pytest.raises(ConfigError, match="TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER"):
        from_environment(without(PRODUCTION, "TWILIO_MESSAGING_SERVICE_SID"))


def test_production_accepts_a_from_number_instead_of_a_messaging_service() -> None:
    env = {**without(PRODUCTION, "TWILIO_MESSAGING_SERVICE_SID"), "TWILIO_FROM_NUMBER": "+1555"}

    assert from_environment(env)["TWILIO_FROM_NUMBER"] == "+1555"


def test_development_fills_in_local_defaults() -> None:
    config = from_environment(DEVELOPMENT_SECRETS)

    assert config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert config["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert config["PUBLIC_URL"] == "http://127.0.0.1:5000"
    assert config["TWILIO_API_URL"] == "https://api.twilio.com"


def test_development_still_requires_the_secrets() -> None:
    with pytest.raises(ConfigError) as error:
        from_environment({"GOTV_ENV": "development"})

    message = str(error.value)
    for name in ("SECRET_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        assert name in message
    for defaulted in ("DATABASE_URL", "REDIS_URL", "PUBLIC_URL"):
        assert defaulted not in message


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u:p@db/gotv", "postgresql+psycopg://u:p@db/gotv"),
        ("postgresql://u:p@db/gotv", "postgresql+psycopg://u:p@db/gotv"),
        ("postgresql+psycopg://u:p@db/gotv", "postgresql+psycopg://u:p@db/gotv"),
        ("sqlite:////var/lib/gotv.sqlite3", "sqlite:////var/lib/gotv.sqlite3"),
    ],
)
def test_database_urls_use_the_psycopg_driver(given: str, used: str) -> None:
    config = from_environment({**PRODUCTION, "DATABASE_URL": given})

    assert config["SQLALCHEMY_DATABASE_URI"] == used


def test_an_unknown_gotv_env_is_refused() -> None:
    with pytest.raises(ConfigError, match="GOTV_ENV"):
        from_environment({**PRODUCTION, "GOTV_ENV": "staging"})


@pytest.mark.parametrize("value", ["two", "1.5", "-1"])
def test_a_proxy_count_that_is_not_a_whole_number_of_proxies_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="PROXY_COUNT"):
        from_environment({**PRODUCTION, "PROXY_COUNT": value})


def test_a_proxy_count_of_zero_trusts_no_forwarded_headers() -> None:
    assert from_environment({**PRODUCTION, "PROXY_COUNT": "0"})["PROXY_COUNT"] == 0


def test_a_proxy_count_and_an_upload_limit_are_read_when_set() -> None:
    config = from_environment({**PRODUCTION, "PROXY_COUNT": "2", "MAX_UPLOAD_MB": "10"})

    assert (config["PROXY_COUNT"], config["MAX_CONTENT_LENGTH"]) == (2, 10 * 1024 * 1024)


def test_production_sends_cookies_over_https_only() -> None:
    config = from_environment(PRODUCTION)

    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["REMEMBER_COOKIE_SECURE"] is True


def test_development_cookies_work_over_plain_http() -> None:
    config = from_environment(DEVELOPMENT_SECRETS)

    assert config["SESSION_COOKIE_SECURE"] is False


def test_a_production_app_sets_a_secure_http_only_session_cookie() -> None:
    config = {
        **from_environment(PRODUCTION),
        "SQLALCHEMY_DATABASE_URI": "sqlite://",
        "UPLOAD_STORAGE": "local",
    }
    app: Flask = create_app(config)

    response = app.test_client().get("/login")

    cookies = response.headers.getlist("Set-Cookie")
    session = next(cookie for cookie in cookies if cookie.startswith("session="))
    assert "; Secure" in session and "; HttpOnly" in session


def test_create_app_refuses_an_incomplete_configuration() -> None:
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):
        create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
