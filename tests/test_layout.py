"""The shape rules that keep the code honest, checked on the source itself.

The packages are the architecture (README, "The code"): pages on top, the rules in packages
named for what they decide, outside services at the edge. `MAY_IMPORT` says which package may
import which; a package may always import itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CORE = {"gotv.config", "gotv.db", "gotv.encryption", "gotv.ids", "gotv.logs", "gotv.models"}
PEOPLE = CORE | {"gotv.edge", "gotv.people"}
COMPLIANCE = PEOPLE | {"gotv.compliance"}
TEXTING = COMPLIANCE | {"gotv.texting"}
CAMPAIGNS = TEXTING | {"gotv.campaigns"}
LISTS = CAMPAIGNS | {"gotv.lists"}
RULES = LISTS
PAGES = RULES | {"gotv.web", "gotv.api"}

# Bottom to top. Each rule package asks only those below it: compliance is the bottom of the
# rules (texting, campaigns and lists ask it, never the reverse).
MAY_IMPORT: dict[str, set[str]] = {
    "gotv.config": set(),
    "gotv.db": set(),
    "gotv.encryption": set(),
    "gotv.logs": set(),
    "gotv.ids": set(),
    "gotv.models": {"gotv.db", "gotv.encryption"},
    "gotv.edge": {"gotv.config"},
    "gotv.people": PEOPLE,
    "gotv.compliance": COMPLIANCE,
    "gotv.texting": TEXTING,
    "gotv.campaigns": CAMPAIGNS,
    "gotv.lists": LISTS,
    # Pages and the JSON API: every rule; each other's sign-in and error handling.
    "gotv.web": PAGES,
    "gotv.api": PAGES,
    "gotv.cli": RULES,
    "gotv": PAGES | {"gotv.cli", "gotv.config"},
    # The fake carrier stands apart: it knows Twilio's API, not gotv.
    "gotv.fakecarrier": set(),
    "workers": RULES | {"gotv", "workers"},
}
RULE_PACKAGES = ("gotv.people", "gotv.compliance", "gotv.texting", "gotv.campaigns", "gotv.lists")


def modules() -> Iterator[tuple[str, ast.Module]]:
    for folder in ("gotv", "workers"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "migrations" not in path.parts:
                yield str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8"))


def dotted(path: str) -> str:
    """gotv/web/inbox.py -> gotv.web.inbox; gotv/web/__init__.py -> gotv.web."""
    parts = Path(path).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: str, tree: ast.Module) -> set[str]:
    """Every module `tree` imports, as full dotted names (`from gotv import db` -> gotv.db)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                package = dotted(path).split(".")
                if not path.endswith("__init__.py"):
                    package = package[:-1]
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            names.add(module)
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


def package_of(module: str) -> str:
    """The MAY_IMPORT entry a module belongs to: the longest key it is inside."""
    candidates = [key for key in MAY_IMPORT if module == key or module.startswith(key + ".")]
    return max(candidates, key=len)


def imported_packages(tree: ast.Module) -> set[str]:
    names = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    return {name.split(".")[0] for name in names}


def test_each_package_imports_only_the_packages_below_it() -> None:
    breaches = []
    for path, tree in modules():
        package = package_of(dotted(path))
        allowed = MAY_IMPORT[package] | {package}
        for module in imported_modules(path, tree):
            if module == "gotv" or not module.startswith(("gotv.", "workers")):
                continue  # (`from gotv import db` names gotv.db, checked as such)
            target = package_of(module)
            if target not in allowed:
                breaches.append(f"{path} imports {module} ({package} -> {target})")

    assert breaches == []


def test_every_module_belongs_to_a_package_with_rules() -> None:
    unplaced = [
        path
        for path, _tree in modules()
        if package_of(dotted(path)) == "gotv" and dotted(path) not in ("gotv", "gotv.cli")
    ]

    assert unplaced == []


def test_only_the_sms_module_imports_twilio() -> None:
    importers = [path for path, tree in modules() if "twilio" in imported_packages(tree)]

    assert importers == ["gotv/edge/sms.py"]


def test_only_the_config_module_reads_the_environment() -> None:
    readers = [
        path
        for path, tree in modules()
        if any(
            isinstance(node, ast.Attribute)
            and node.attr in ("environ", "getenv")
            # (a request's WSGI environ is the request, not the process's environment)
            and not (isinstance(node.value, ast.Name) and node.value.id == "request")
            for node in ast.walk(tree)
        )
    ]

    assert readers == ["gotv/config.py"]


def test_the_rules_do_not_import_flask() -> None:
    flask_users = [
        path
        for path, tree in modules()
        if dotted(path).startswith(RULE_PACKAGES)
        and imported_packages(tree) & {"flask", "flask_login", "flask_wtf", "werkzeug"}
    ]

    assert flask_users == []
