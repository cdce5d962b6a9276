"""Twilio's OpenAPI contracts: the 2010-04-01 API (Messages, Accounts, IncomingPhoneNumbers,
Media) and the Messaging API (Services).

The repository carries the part of each that gotv and its fake carrier use (tests/contracts/,
MIT licence with them): every operation of the paths in PATHS, and every schema and parameter
those refer to, as Twilio publishes them. So the contract tests run wherever the tests do, a
bare CI machine included. Refresh them from Twilio's whole files with
`python -m tests.twilio_contract DIRECTORY`; a test checks that the copies are the whole
files' parts, where those files are beside the repository (../shared/twilio).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "contracts"
CONTRACT = HERE / "twilio_api_v2010.json"
MESSAGING_CONTRACT = HERE / "twilio_messaging_v1.json"
# Twilio's whole files, where this machine has them.
PUBLISHED = Path(__file__).resolve().parents[2] / "shared/twilio"
CONTRACT_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"

# The paths gotv calls (gotv/edge/sms.py) or its fake answers (gotv/fakecarrier), by file.
PATHS = {
    CONTRACT.name: (
        "/2010-04-01/Accounts.json",
        "/2010-04-01/Accounts/{Sid}.json",
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json",
        CONTRACT_PATH,
        "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json",
        "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media.json",
        "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}.json",
    ),
    MESSAGING_CONTRACT.name: (
        "/v1/Services",
        "/v1/Services/{Sid}",
        "/v1/Services/{ServiceSid}/PhoneNumbers",
        "/v1/Services/{ServiceSid}/PhoneNumbers/{Sid}",
    ),
}


def load_contract(path: Path = CONTRACT) -> dict[str, Any]:
    """The parsed contract (the repository's part of it)."""
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def part_of(published: dict[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """The part of a published contract that describes `paths`: their operations, and the
    components (schemas, parameters) they refer to, directly or through each other."""
    components: dict[str, dict[str, Any]] = {}
    pending = [published["paths"][path] for path in paths]
    while pending:
        for ref in _refs(pending.pop()):
            _, kind, name = ref.removeprefix("#/").split("/")
            if name not in components.setdefault(kind, {}):
                components[kind][name] = published["components"][kind][name]
                pending.append(components[kind][name])
    components["securitySchemes"] = published["components"]["securitySchemes"]
    return {
        **{key: published[key] for key in ("openapi", "info", "servers", "security")},
        "paths": {path: published["paths"][path] for path in paths},
        "components": {kind: dict(sorted(found.items())) for kind, found in components.items()},
    }


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def written(contract: dict[str, Any]) -> str:
    return json.dumps(contract, indent=1, sort_keys=True) + "\n"


def refresh(directory: Path) -> None:
    """Write the repository's parts of the published contracts in `directory`."""
    for name, paths in PATHS.items():
        published = json.loads((directory / name).read_text(encoding="utf-8"))
        (HERE / name).write_text(written(part_of(published, paths)), encoding="utf-8")


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
    return form_schema(contract, CONTRACT_PATH, "post")


def message_schema(contract: dict[str, Any]) -> dict[str, Any]:
    return response_schema(contract, CONTRACT_PATH, "post", "201")


def operation(contract: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    """The contract's operation for ``method`` (lower case) on ``path``."""
    found: dict[str, Any] = contract["paths"][path][method]
    return found


def form_schema(contract: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    """The schema of an operation's url-encoded form body."""
    content = operation(contract, path, method)["requestBody"]["content"]
    return resolve(contract, content["application/x-www-form-urlencoded"]["schema"])


def query_parameters(contract: dict[str, Any], path: str, method: str) -> set[str]:
    """The names of an operation's query parameters."""
    parameters = operation(contract, path, method).get("parameters", [])
    return {p["name"] for p in parameters if p["in"] == "query"}


def response_schema(
    contract: dict[str, Any], path: str, method: str, status: str = "200"
) -> dict[str, Any]:
    """The schema of an operation's JSON answer with ``status``."""
    response = operation(contract, path, method)["responses"][status]
    return resolve(contract, response["content"]["application/json"]["schema"])


def problems(
    contract: dict[str, Any], schema: dict[str, Any], value: Any, where: str = "$"
) -> list[str]:
    """Where ``value`` breaks ``schema``: a field the schema does not name, a null where it is
    not nullable, a wrong type, a value outside an enum, a string off its pattern. An object's
    fields are checked as far as its schema names them (a ``uri-map`` names none)."""
    schema = resolve(contract, schema)
    if value is None:
        return [] if schema.get("nullable") else [f"{where} is null"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where} = {value!r} is not one of {schema['enum']}"]
    kind = schema.get("type", "object" if "properties" in schema else None)
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where} is not an object"]
        return _object_problems(contract, schema, value, where)
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where} is not an array"]
        items = schema.get("items", {})
        return [
            p
            for i, item in enumerate(value)
            for p in problems(contract, items, item, f"{where}[{i}]")
        ]
    return _scalar_problems(schema, kind, value, where)


def _object_problems(
    contract: dict[str, Any], schema: dict[str, Any], value: dict[str, Any], where: str
) -> list[str]:
    properties = schema.get("properties")
    if properties is None:
        return []
    found = [f"{where}.{name} is not in the contract" for name in value if name not in properties]
    for name, item in value.items():
        if name in properties:
            found += problems(contract, properties[name], item, f"{where}.{name}")
    return found


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _scalar_problems(schema: dict[str, Any], kind: str | None, value: Any, where: str) -> list[str]:
    expected = _TYPES.get(kind or "")
    if expected is None:
        return []
    if not isinstance(value, expected) or (kind != "boolean" and isinstance(value, bool)):
        return [f"{where} = {value!r} is not a {kind}"]
    pattern = schema.get("pattern")
    if pattern is not None and not re.match(pattern, str(value)):
        return [f"{where} = {value!r} does not match {pattern}"]
    return []


if __name__ == "__main__":
    refresh(Path(sys.argv[1]) if len(sys.argv) > 1 else PUBLISHED)
