"""The shape rules that keep the code honest, checked on the source itself."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules() -> Iterator[tuple[str, ast.Module]]:
    for folder in ("gotv", "workers"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.parts:
                yield str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8"))


def imported_packages(tree: ast.Module) -> set[str]:
    names = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    return {name.split(".")[0] for name in names}


def test_only_the_sms_module_imports_twilio() -> None:
    importers = [path for path, tree in modules() if "twilio" in imported_packages(tree)]

    assert importers == ["gotv/edge/sms.py"]


def test_only_the_config_module_reads_the_environment() -> None:
    readers = [
        path
        for path, tree in modules()
        if any(
            isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")
            for node in ast.walk(tree)
        )
    ]

    assert readers == ["gotv/config.py"]


def test_domain_modules_do_not_import_flask() -> None:
    domain = (
        "gotv/lists/contacts.py",
        "gotv/campaigns/content.py",
        "gotv/compliance/hours.py",
        "gotv/compliance/keywords.py",
        "gotv/people/team.py",
        "gotv/people/twofactor.py",
    )
    flask_users = [
        path for path, tree in modules() if path in domain and "flask" in imported_packages(tree)
    ]

    assert flask_users == []
