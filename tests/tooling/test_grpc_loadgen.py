"""The compiled gRPC load generator: its argv, its build, its argument checks and request bytes."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from bench import grpc_loadgen, load_requests, loadgen


def _cfg(**kw) -> loadgen.LoadConfig:
    base = dict(protocol="grpc", target="127.0.0.1:50051", scenario="consume", accounts=1000, duration_s=5.0, run_id="r1")
    return loadgen.LoadConfig(**{**base, **kw})


def test_command_is_the_python_cli_plus_out(tmp_path):
    closed = _cfg(concurrency=16, warmup_s=1.0, connections=2)
    argv = grpc_loadgen.command(closed, tmp_path / "r.json", "/x/grpc-loadgen")
    assert argv == ["/x/grpc-loadgen", *loadgen.cli_args(closed), "--out", str(tmp_path / "r.json")]
    flags = dict(zip(argv[1::2], argv[2::2]))
    assert flags["--protocol"] == "grpc" and flags["--concurrency"] == "16" and flags["--connections"] == "2"
    assert flags["--run-id"] == "r1" and "--rate" not in flags

    opened = _cfg(scenario="batch", rate=300.0, account_offset=10, target="h:1,h:2")
    flags = dict(zip(*[iter(grpc_loadgen.command(opened, "o.json")[1:])] * 2))
    assert flags["--rate"] == "300.0" and flags["--account-offset"] == "10" and flags["--target"] == "h:1,h:2"
    assert "--concurrency" not in flags and "--connections" not in flags  # the binary defaults to 4 channels


def test_command_refuses_rest():
    with pytest.raises(ValueError, match="gRPC only"):
        grpc_loadgen.command(_cfg(protocol="rest", concurrency=1), "o.json")


def test_binary_lives_in_the_repo_build_dir():
    assert grpc_loadgen.binary_path() == grpc_loadgen.ROOT / ".build" / "grpc-loadgen"
    assert grpc_loadgen.SOURCE.name == "loadgen.cc" and grpc_loadgen.SOURCE.exists()


def test_ensure_built_keeps_an_up_to_date_binary(tmp_path, monkeypatch):
    fake = tmp_path / "grpc-loadgen"
    fake.write_text("#!/bin/sh\n")
    future = time.time() + 3600
    os.utime(fake, (future, future))
    monkeypatch.setattr(grpc_loadgen, "binary_path", lambda: fake)

    def no_compiling(*args, **kwargs):
        raise AssertionError("must not rebuild a binary newer than its source")

    monkeypatch.setattr(grpc_loadgen.subprocess, "run", no_compiling)
    assert grpc_loadgen.ensure_built() == fake


# ------------------------------------------------------------------ with the compiler


def _have_grpc_dev() -> bool:
    try:
        return subprocess.run(["pkg-config", "--exists", "grpc++"], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


needs_grpc_dev = pytest.mark.skipif(not _have_grpc_dev(), reason="grpc++ development files not installed")
BASE_ARGS = ["--target", "127.0.0.1:1", "--accounts", "1000", "--account-offset", "5000", "--duration", "1"]


@pytest.fixture(scope="module")
def binary():
    return str(grpc_loadgen.ensure_built())


@needs_grpc_dev
@pytest.mark.parametrize(
    "bad",
    [
        ["--scenario", "consume", "--concurrency", "4", "--rate", "100"],  # both loops
        ["--scenario", "consume"],  # neither loop
        ["--scenario", "nope", "--concurrency", "4"],
        ["--scenario", "consume", "--concurrency", "4", "--protocol", "rest"],
        ["--scenario", "consume", "--concurrency", "4", "--run-id", "bad id"],
    ],
)
def test_binary_refuses_bad_arguments(binary, bad):
    proc = subprocess.run([binary, *BASE_ARGS, *bad], capture_output=True, text=True, timeout=10)
    assert proc.returncode != 0 and "error" in proc.stderr and proc.stdout == ""


@needs_grpc_dev
@pytest.mark.parametrize("scenario", load_requests.SCENARIOS)
def test_binary_sends_the_python_bytes(binary, scenario):
    # --dump-requests prints the requests as hex without connecting; each must be byte-for-byte what
    # bench.loadgen sends for its user id (random, in range) and key (<run_id>-<counter>).
    args = [*BASE_ARGS, "--scenario", scenario, "--concurrency", "1", "--run-id", "r.1", "--dump-requests", "20"]
    proc = subprocess.run([binary, *args], capture_output=True, text=True, timeout=10, check=True)
    requests = [bytes.fromhex(line) for line in proc.stdout.split()]
    assert len(requests) == 20
    users = set()
    for n, request in enumerate(requests, 1):
        assert request[0] == 0x0A
        user_id = request[2 : 2 + request[1]].decode()
        assert 5001 <= int(user_id) <= 6000
        users.add(user_id)
        assert request == load_requests.grpc_request(scenario, user_id, f"r.1-{n}")
    assert len(users) > 1
