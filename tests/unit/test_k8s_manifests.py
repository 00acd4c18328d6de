"""deploy/: the generated ConfigMaps are fresh, every manifest passes `kubernetes-validate --strict` (offline,
its bundled schemas), the rendered Envoy config passes Envoy's own validation, and the wiring between the
manifests holds (probes on the health names the server serves, the Secret's keys, the cluster's Service)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from billing.entrypoints.server import LIVENESS_SERVICE, SERVICE_NAME
from tools.gen_k8s_config import DEPLOY, EDGE_PEERS_SERVICE, GRPC_PORT, SECRETS, SERVER_SERVICE, rendered

VALIDATOR = shutil.which("kubernetes-validate") or str(Path(sys.executable).parent / "kubernetes-validate")
ENVOY = shutil.which("envoy") or str(Path(sys.executable).parent / "envoy")


def _manifests() -> list[Path]:
    return sorted(DEPLOY.glob("*.yaml"))


def _documents() -> list[dict]:
    return [document for path in _manifests() for document in yaml.safe_load_all(path.read_text()) if document]


def _one(kind: str, name: str) -> dict:
    [found] = [d for d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("path", sorted(rendered()), ids=lambda path: path.name)
def test_generated_manifests_are_fresh(path: Path) -> None:
    assert path.read_text() == rendered()[path], f"{path.name} is stale: run `python tools/gen_k8s_config.py` (make gen)"


def test_every_manifest_passes_strict_validation() -> None:
    result = subprocess.run([VALIDATOR, "--strict", "--quiet", *map(str, _manifests())], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {document["kind"] for document in _documents()}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Job"} <= kinds


def test_strict_validation_refuses_an_unknown_field(tmp_path: Path) -> None:
    """The check above would pass a typo'd key if the validator were not strict."""
    typo = tmp_path / "typo.yaml"
    typo.write_text((DEPLOY / "server.yaml").read_text().replace("  revisionHistoryLimit:", "  revisionHistoryLimt:", 1))
    result = subprocess.run([VALIDATOR, "--strict", "--quiet", str(typo)], capture_output=True, text=True)
    assert result.returncode != 0 and "revisionHistoryLimt" in result.stdout + result.stderr


def test_envoy_accepts_the_rendered_config(tmp_path: Path) -> None:
    configmap = _one("ConfigMap", "billing-envoy")
    (tmp_path / "billing_response.lua").write_text(configmap["data"]["billing_response.lua"])
    (tmp_path / "billing_descriptor.pb").write_bytes(base64.b64decode(configmap["binaryData"]["billing_descriptor.pb"]))
    config = configmap["data"]["envoy.yaml"].replace("/etc/envoy/", f"{tmp_path}/").replace(
        "/tmp/envoy-admin.sock", str(tmp_path / "admin.sock"))
    (tmp_path / "envoy.yaml").write_text(config)
    result = subprocess.run([ENVOY, "--mode", "validate", "-c", str(tmp_path / "envoy.yaml")],
                            env=os.environ | {"BILLING_EDGE_TOKEN": "0" * 64}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Deprecated field" not in result.stderr


def test_envoy_balances_over_the_server_pods_by_grpc_health() -> None:
    config = yaml.safe_load(_one("ConfigMap", "billing-envoy")["data"]["envoy.yaml"])
    cluster = config["static_resources"]["clusters"][0]
    address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert (cluster["type"], address) == ("STRICT_DNS", {"address": SERVER_SERVICE, "port_value": GRPC_PORT})
    assert cluster["health_checks"][0]["grpc_health_check"]["service_name"] == SERVICE_NAME
    assert cluster["outlier_detection"]["consecutive_5xx"] > 0
    service = _one("Service", SERVER_SERVICE)
    assert service["spec"]["clusterIP"] == "None"  # one DNS answer per pod, not a virtual IP
    assert service["spec"]["selector"] == _one("Deployment", "billing-server")["spec"]["selector"]["matchLabels"]


def test_the_envoys_share_the_per_ip_limits_through_their_headless_service() -> None:
    """Envoy's local cluster is every Envoy pod (billing-envoy-peers): each keeps its share of a per-IP limit."""
    config = yaml.safe_load(_one("ConfigMap", "billing-envoy")["data"]["envoy.yaml"])
    edge = {c["name"]: c for c in config["static_resources"]["clusters"]}[config["cluster_manager"]["local_cluster_name"]]
    address = edge["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert (edge["type"], address["address"]) == ("STRICT_DNS", EDGE_PEERS_SERVICE)
    peers = _one("Service", EDGE_PEERS_SERVICE)
    assert peers["spec"]["clusterIP"] == "None" and peers["spec"]["publishNotReadyAddresses"] is True
    assert peers["spec"]["selector"] == _one("Deployment", "billing-envoy")["spec"]["selector"]["matchLabels"]


def test_server_probes_ask_the_health_names_the_server_serves() -> None:
    [container] = _one("Deployment", "billing-server")["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["grpc"] == {"port": GRPC_PORT, "service": SERVICE_NAME}
    assert container["livenessProbe"]["grpc"] == {"port": GRPC_PORT, "service": LIVENESS_SERVICE}
    assert {"configMapRef": {"name": "billing-config"}} in container["envFrom"]
    secret_keys = {e["name"] for e in container["env"] if e["valueFrom"]["secretKeyRef"]["name"] == "billing-secrets"}
    assert secret_keys == set(SECRETS)
    assert not set(SECRETS) & set(_one("ConfigMap", "billing-config")["data"])


def test_the_autoscaler_and_budgets_aim_at_the_deployments() -> None:
    hpa = _one("HorizontalPodAutoscaler", "billing-server")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "billing-server"
    for name in ("billing-server", "billing-envoy"):
        labels = _one("Deployment", name)["spec"]["selector"]["matchLabels"]
        assert _one("PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"] == labels
    [migrate] = _one("Job", "billing-migrate")["spec"]["template"]["spec"]["containers"]
    assert migrate["command"] == ["billing", "migrate"]
    assert _one("ConfigMap", "billing-config")["data"]["BILLING_MIGRATE_ON_START"] == "0"
