"""Twilio's OpenAPI contract for the Messages API (../shared/twilio beside the repository)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

CONTRACT = Path(__file__).resolve().parents[2] / "shared/twilio/twilio_api_v2010.json"
CONTRACT_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"


def load_contract() -> dict[str, Any]:
    """The parsed contract: skips where shared/ is absent, fails in CI, where it never is."""
    if not CONTRACT.exists():
        if os.environ.get("CI"):
            pytest.fail(f"Twilio's OpenAPI contract is not at {CONTRACT}")
        pytest.skip(f"Twilio's OpenAPI contract is not at {CONTRACT}")
    loaded: dict[str, Any] = json.loads(CONTRACT.read_text(encoding="utf-8"))
    return loaded


def resolve(contract: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = contract
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return resolve(contract, node)


def create_operation(contract: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = contract["paths"][CONTRACT_PATH]["post"]
    return operation


def request_schema(contract: dict[str, Any]) -> dict[str, Any]:
    content = create_operation(contract)["requestBody"]["content"]
    return resolve(contract, content["application/x-www-form-urlencoded"]["schema"])


def message_schema(contract: dict[str, Any]) -> dict[str, Any]:
    response = create_operation(contract)["responses"]["201"]["content"]["application/json"]
    return resolve(contract, response["schema"])
