"""The dependency rule above the domain: use cases know nothing of transport or storage drivers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[2] / "src" / "billing" / "service"
FORBIDDEN = (
    "billing.adapters", "billing.api", "billing.v1", "grpc", "psycopg", "sqlalchemy", "stripe", "google.protobuf",
    "prometheus_client",
)


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("module", sorted(SERVICE.glob("*.py")), ids=lambda p: p.name)
def test_use_cases_import_no_infrastructure(module):
    offending = [name for name in _imports(module) if name.startswith(FORBIDDEN)]
    assert offending == []


API = SERVICE.parent / "api"
DRIVERS = ("psycopg", "psycopg_pool", "sqlalchemy", "billing.adapters")


@pytest.mark.parametrize("module", sorted(API.glob("*.py")), ids=lambda p: p.name)
def test_the_api_edge_imports_no_database_driver(module):
    """Adapters turn driver failures into service.ports.Unavailable; the edge maps only that."""
    offending = [name for name in _imports(module) if name.startswith(DRIVERS)]
    assert offending == []


@pytest.mark.parametrize("module", ["settings.py", "environment_variables.py"])
def test_settings_import_no_adapter(module):
    """Adapters take their configuration (the catalog path, say) from Settings, not the other way round;
    settings.py reads only the declared variables."""
    imported = [name for name in _imports(SERVICE.parent / module) if name.startswith("billing.")]
    assert set(imported) <= {"billing.environment_variables"}


SOURCE = SERVICE.parent
METRICS_ADAPTER = SOURCE / "adapters" / "metrics.py"


def test_only_the_metrics_adapter_imports_prometheus_client():
    """Use cases count through the Metrics port, the interceptor through RpcMetrics; server.py composes."""
    importers = {
        path.relative_to(SOURCE).as_posix()
        for path in SOURCE.rglob("*.py")
        if any(name.startswith("prometheus_client") for name in _imports(path))
    }
    assert importers == {METRICS_ADAPTER.relative_to(SOURCE).as_posix()}


PRODUCT = SERVICE.parent


@pytest.mark.parametrize("module", sorted(PRODUCT.rglob("*.py")), ids=lambda p: str(p.relative_to(PRODUCT)))
def test_the_service_package_knows_nothing_of_the_local_stack(module):
    """src/billing is the service's wheel; the local stack (devstack/) may import it, never the reverse."""
    assert [name for name in _imports(module) if name.startswith("devstack")] == []


def test_the_wheel_holds_the_service_only():
    """No local tooling left in src/billing: the stand-in, the demo, Envoy's rendering, the embedded PostgreSQL."""
    leftovers = {"standin", "demo_server.py", "envoy_config.py", "supervised_postgres.py", "cli_standin.py"}
    assert leftovers.isdisjoint(path.name for path in PRODUCT.iterdir())
    assert not (PRODUCT / "adapters" / "embedded_postgres.py").exists()
