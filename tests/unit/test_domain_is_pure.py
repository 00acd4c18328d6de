"""The domain is pure: no transport, storage, payment or generated-code imports, and no clock reads."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "src" / "billing" / "domain"
DOMAIN_PACKAGE = "billing.domain"

FORBIDDEN_MODULES = (
    "grpc",
    "sqlalchemy",
    "psycopg",
    "psycopg2",
    "asyncpg",
    "stripe",
    "google.protobuf",
    "billing.v1",
    "billing.adapters",
    "billing.api",
    "billing.service",
    "prometheus_client",
)
# (object, attribute) pairs that read a clock.
CLOCK_CALLS = {
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
    ("time", "time"), ("time", "time_ns"), ("time", "monotonic"), ("time", "perf_counter"),
}
# from-imports that would let a clock read hide behind a bare name.
CLOCK_FUNCTIONS = {("time", "time"), ("time", "time_ns"), ("time", "monotonic"), ("time", "perf_counter")}


def is_forbidden(module: str) -> bool:
    return any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN_MODULES)


def absolute(module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    base = DOMAIN_PACKAGE.split(".")[: len(DOMAIN_PACKAGE.split(".")) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def dotted(node: ast.AST) -> str | None:
    """`datetime.datetime.now` -> "datetime.datetime.now"; None for anything not a plain name chain."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def violations(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if is_forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom):
            module = absolute(node.module, node.level)
            if is_forbidden(module):
                found.append(f"line {node.lineno}: from {module} import ...")
            for alias in node.names:
                if is_forbidden(f"{module}.{alias.name}"):
                    found.append(f"line {node.lineno}: from {module} import {alias.name}")
                if (module, alias.name) in CLOCK_FUNCTIONS:
                    found.append(f"line {node.lineno}: from {module} import {alias.name} (a clock)")
        elif isinstance(node, ast.Call):
            name = dotted(node.func)
            if name is not None:
                parts = name.split(".")
                if len(parts) >= 2 and (parts[-2], parts[-1]) in CLOCK_CALLS:
                    found.append(f"line {node.lineno}: {name}() reads the clock")
    return found


def domain_modules() -> list[Path]:
    return sorted(DOMAIN.glob("*.py"))


def test_the_scan_finds_the_domain_modules():
    names = {path.stem for path in domain_modules()}
    assert {"buckets", "balance", "wallet", "catalog", "clock_math", "errors"} <= names


@pytest.mark.parametrize("module", domain_modules(), ids=lambda path: path.name)
def test_domain_module_is_pure(module: Path):
    assert violations(module.read_text()) == []


@pytest.mark.parametrize(
    "source",
    [
        "import grpc",
        "import grpc.aio as aio",
        "import sqlalchemy.ext.asyncio",
        "from sqlalchemy import select",
        "import psycopg",
        "import stripe",
        "from google.protobuf import timestamp_pb2",
        "from google import protobuf",
        "from billing.v1 import balance_pb2",
        "from billing import v1",
        "from billing.adapters.db import repo",
        "from billing import api",
        "import billing.service.consume",
        "from ..service import consume",
        "from ..adapters import db",
        "from prometheus_client import Counter",
        "from datetime import datetime\nx = datetime.now(UTC)",
        "import datetime\nx = datetime.datetime.utcnow()",
        "from datetime import date\nx = date.today()",
        "import time\nx = time.time()",
        "from time import time",
    ],
)
def test_the_scan_catches_impurities(source: str):
    assert violations(source), source


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import datetime, timedelta, timezone\nx = datetime.combine(d, t, tzinfo=timezone.utc)",
        "from billing.domain.errors import InvalidArgument",
        "from .errors import InvalidArgument",
        "import dataclasses, re",
        "def f(now):\n    return now.date()",
    ],
)
def test_the_scan_allows_pure_code(source: str):
    assert violations(source) == []
