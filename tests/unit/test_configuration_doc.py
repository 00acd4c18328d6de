"""docs/configuration.md is what billing.settings declares today, and settings declares every variable read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from billing import settings
from tools.gen_config_doc import DOC, render

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO  # the service (src/) and the local stack (devstack/src/): both read only declared names
NAME = r"((?:BILLING|STRIPE|DATABASE|EMBEDDED_PG)_[A-Z0-9_]+)"
# os.environ["X"], os.environ.get("X"), os.getenv("X"), "X" in os.environ, and the settings' own readers.
READS = (
    re.compile(r"os\.environ(?:\.get)?\s*[(\[]\s*[\"']" + NAME + r"[\"']"),
    re.compile(r"os\.getenv\(\s*[\"']" + NAME + r"[\"']"),
    re.compile(r"[\"']" + NAME + r"[\"']\s+(?:not\s+)?in\s+os\.environ"),
    re.compile(r"\b(?:value|text|is_set|_int|_float|_flag|_seconds_ahead|_calls_per_second|default_int|"
               r"settings_value|settings_text|setting_text)\(\s*[\"']" + NAME + r"[\"']"),
)
# A name built at run time: f"BILLING_KEY_RATE_LIMIT_{scope.upper()}" reads each declared name it begins.
PREFIX_READS = re.compile(r"\(\s*f[\"']" + NAME + r"\{")
# Declared but read by no module of ours: Envoy reads the edge token (envoy.yaml's %ENVIRONMENT()%).
READ_BY_ENVOY = {"BILLING_EDGE_TOKEN"}


def _sources() -> list[tuple[Path, str]]:
    roots = (REPO / "src", REPO / "devstack" / "src")
    return [(path, path.read_text()) for root in roots for path in sorted(root.rglob("*.py"))]


def _names_read() -> dict[str, list[str]]:
    read: dict[str, list[str]] = {}
    for path, text in _sources():
        where = str(path.relative_to(SOURCE))
        for pattern in READS:
            for name in pattern.findall(text):
                read.setdefault(name, []).append(where)
        for prefix in PREFIX_READS.findall(text):
            for name in settings.DECLARED:
                if name.startswith(prefix):
                    read.setdefault(name, []).append(where)
    return read


def test_the_configuration_doc_is_generated_from_the_settings():
    assert DOC.read_text() == render(), "docs/configuration.md is stale: run `make gen` (tools/gen_config_doc.py)"


def test_every_environment_variable_read_is_declared():
    undeclared = {name: where for name, where in _names_read().items() if name not in settings.DECLARED}
    assert undeclared == {}, "declare them in billing.settings.VARIABLES"


def test_every_declared_variable_is_read():
    assert set(settings.DECLARED) - set(_names_read()) - READ_BY_ENVOY == set()


def test_each_variable_is_declared_once_in_a_known_group():
    names = [variable.name for variable in settings.VARIABLES]
    assert len(names) == len(set(names))
    assert {variable.group for variable in settings.VARIABLES} == set(settings.GROUPS)


def test_the_doc_lists_every_variable_with_its_default():
    doc = DOC.read_text()
    for variable in settings.VARIABLES:
        assert f"| `{variable.name}` |" in doc
    assert "| `BILLING_MAX_WATCHERS` | count | `5000` |" in doc


def test_reading_an_undeclared_variable_is_a_mistake():
    with pytest.raises(KeyError):
        settings.value("BILLING_NOT_DECLARED")


def test_the_scan_sees_direct_reads(tmp_path):
    """The patterns above match the ways a module reads the environment (else the scan proves nothing)."""
    sample = ('os.environ.get("BILLING_A", "1")\nos.environ["STRIPE_B"]\nos.getenv("DATABASE_C")\n'
              '"EMBEDDED_PG_D" in os.environ\nsettings.text("BILLING_E")\n')
    assert sorted(n for pattern in READS for n in pattern.findall(sample)) == [
        "BILLING_A", "BILLING_E", "DATABASE_C", "EMBEDDED_PG_D", "STRIPE_B",
    ]
