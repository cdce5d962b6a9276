"""Sentry: unexpected errors of the web and the workers, when SENTRY_DSN is set.

No personal data is sent (no user details, no request bodies, no local variables, no SQL or
job arguments), and no performance tracing: a voter's number or a volunteer's reply never
leaves the instance this way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sentry_sdk
from sentry_sdk.integrations.flask import FlaskIntegration
from sentry_sdk.integrations.rq import RqIntegration


def init(config: Mapping[str, Any]) -> bool:
    """Start reporting to Sentry when SENTRY_DSN is set; whether it did."""
    dsn = config.get("SENTRY_DSN")
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        integrations=[FlaskIntegration(), RqIntegration()],
        data_collection={
            "user_info": False,
            "http_bodies": [],
            "stack_frame_variables": False,
            "database_query_data": False,
            "queues": False,
        },
        traces_sample_rate=0.0,
        environment=config.get("ENV_NAME") or "production",
    )
    return True
