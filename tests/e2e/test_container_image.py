"""The deployable unit: the OCI image `make image` builds (tools/build_image.py: buildah from a debootstrap root
filesystem and wheels downloaded on the host) migrates an empty database with the migration Job's command, serves
gRPC health against the embedded PostgreSQL the way deploy/server.yaml probes it, and stops cleanly on SIGTERM.

It runs under podman with runc, lowered ulimits (this host's hard limits are below podman's defaults) and the host's
network (the embedded PostgreSQL listens on 127.0.0.1). The image is built once per run at most; its root filesystem
and wheels are cached in ~/.cache/billing-image (BILLING_IMAGE_CACHE), and an image whose inputs did not change is not built again.
`make test` installs buildah, podman and debootstrap first and requires them (BILLING_REQUIRE_IMAGE=1); elsewhere the
test is skipped without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from billing.entrypoints.server import LIVENESS_SERVICE, SERVICE_NAME
from testkit.processes import free_port
from testkit.waiting import wait_until
from tests.support.database import empty_database

TOOLS = ("buildah", "podman", "debootstrap", "runc")
IMAGE = "billing:0.1.0"
# podman's defaults (1048576 files, processes) are above this host's hard limits: runc could not set them.
LIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")
STARTUP_SECONDS = 60.0
BUILD_SECONDS = 600.0

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def image() -> str:
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    if missing:
        if os.environ.get("BILLING_REQUIRE_IMAGE") == "1":
            pytest.fail(f"missing {', '.join(missing)}: `make test` installs them (apt-get install buildah podman debootstrap)")
        pytest.skip(f"missing {', '.join(missing)} (`make image` installs them)")
    result = subprocess.run([sys.executable, "-m", "tools.build_image", "--tag", IMAGE], capture_output=True, text=True,
                            timeout=BUILD_SECONDS, cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return IMAGE


def _podman_run(image: str, database_url: str, *argv: str, detach: bool = False, name: str | None = None,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {"DATABASE_URL": database_url, "BILLING_MASTER_KEY": os.environ["BILLING_MASTER_KEY"]} | (env or {})
    # A read-only root with a writable /tmp, as deploy/server.yaml runs it (readOnlyRootFilesystem).
    command = ["podman", "run", "--runtime", "runc", *LIMITS, "--network", "host", "--read-only"]
    command += ["--detach", "--name", name] if detach else ["--rm"]
    for key, value in environment.items():
        command += ["--env", f"{key}={value}"]
    return subprocess.run([*command, image, *argv], capture_output=True, text=True, timeout=120)


def _health(port: int, service: str) -> int | None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        except grpc.RpcError:
            return None
    return answer.status


@pytest.fixture()
def migrated_by_the_image(image: str) -> Iterator[str]:
    with empty_database("billing_image") as url:
        # The migration Job's command (deploy/migrate-job.yaml), from the image.
        result = _podman_run(image, url, "billing", "migrate")
        assert result.returncode == 0, result.stdout + result.stderr
        password = make_url(url).password
        assert "migrated" in result.stdout and password and password not in result.stdout + result.stderr
        yield url


def test_the_image_migrates_and_serves_grpc_health_then_stops_cleanly(image: str, migrated_by_the_image: str) -> None:
    port, name = free_port(), f"billing-image-test-{uuid.uuid4().hex[:8]}"
    started = _podman_run(image, migrated_by_the_image, detach=True, name=name,
                          env={"BILLING_GRPC_PORT": str(port), "BILLING_METRICS_PORT": "0"})
    assert started.returncode == 0, started.stderr
    try:
        serving = health_pb2.HealthCheckResponse.SERVING
        wait_until(lambda: _health(port, SERVICE_NAME) == serving or _exited(name),
                   "the server in the image serves gRPC health", timeout=STARTUP_SECONDS)
        assert _health(port, SERVICE_NAME) == serving, _logs(name)
        assert _health(port, LIVENESS_SERVICE) == serving
        stopped = subprocess.run(["podman", "stop", "--time", "20", name], capture_output=True, text=True, timeout=60)
        assert stopped.returncode == 0, stopped.stderr
        exit_code = subprocess.run(["podman", "inspect", "--format", "{{.State.ExitCode}}", name],
                                   capture_output=True, text=True).stdout.strip()
        assert exit_code == "0", _logs(name)  # SIGTERM: drained and exited, not killed after the grace period
        assert "stopping: draining" in _logs(name)
    finally:
        subprocess.run(["podman", "rm", "--force", name], capture_output=True)


def _exited(name: str) -> bool:
    state = subprocess.run(["podman", "inspect", "--format", "{{.State.Status}}", name], capture_output=True, text=True)
    return state.stdout.strip() in ("exited", "stopped")


def _logs(name: str) -> str:
    result = subprocess.run(["podman", "logs", name], capture_output=True, text=True)
    return (result.stdout + result.stderr)[-4000:]
