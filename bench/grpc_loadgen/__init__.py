"""The compiled gRPC load generator (loadgen.cc): building it and running it.

It takes the flags of `python -m bench.loadgen --protocol grpc` and writes the same result JSON
(with "tool": "grpc-loadgen") at a fraction of the CPU per request, so the generator steals less
CPU from the server it measures.

    ensure_built() -> Path          compiles into <repo>/.build/grpc-loadgen when the source is newer
    run_subprocess(LoadConfig) -> dict   like bench.loadgen.run_subprocess, with the binary
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench import loadgen

SOURCE = Path(__file__).resolve().parent / "loadgen.cc"
ROOT = Path(__file__).resolve().parents[2]
APT_PACKAGES = ("libgrpc++-dev", "pkg-config")


def binary_path() -> Path:
    return ROOT / ".build" / "grpc-loadgen"


def _have_grpc_dev() -> bool:
    try:
        return subprocess.run(["pkg-config", "--exists", "grpc++"], capture_output=True).returncode == 0
    except FileNotFoundError:  # no pkg-config at all
        return False


def _install_grpc_dev() -> None:
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"grpc++ development files not found and no apt-get to install {' '.join(APT_PACKAGES)}")
    install = ["apt-get", "install", "-y", "-q", *APT_PACKAGES]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(install, capture_output=True, env=env).returncode != 0:
        # Most likely stale package lists (a fresh container): refresh once and retry.
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env)
        proc = subprocess.run(install, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(install)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def compile_command(output: Path) -> list[str]:
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "grpc++", "grpc"], capture_output=True, text=True, check=True
    ).stdout
    return ["g++", "-O2", "-std=c++17", str(SOURCE), *shlex.split(flags), "-o", str(output)]


def ensure_built() -> Path:
    """The binary, compiled first if missing or older than loadgen.cc (installs grpc++ if needed)."""
    binary = binary_path()
    if binary.exists() and binary.stat().st_mtime >= SOURCE.stat().st_mtime:
        return binary
    if not _have_grpc_dev():
        _install_grpc_dev()
    binary.parent.mkdir(parents=True, exist_ok=True)
    # Compile to a temporary name and rename: a concurrent caller never runs a half-written binary.
    fd, tmp = tempfile.mkstemp(prefix=".grpc-loadgen-", dir=binary.parent)
    os.close(fd)
    try:
        proc = subprocess.run(compile_command(Path(tmp)), capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"compiling {SOURCE.name} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, binary)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return binary


def command(cfg: loadgen.LoadConfig, out: Path | str, binary: Path | str | None = None) -> list[str]:
    """The argv that runs cfg with the binary: bench.loadgen's CLI flags, plus --out."""
    if cfg.protocol != "grpc":
        raise ValueError(f"grpc-loadgen speaks gRPC only, got protocol {cfg.protocol!r}")
    return [str(binary or binary_path()), *loadgen.cli_args(cfg), "--out", str(out)]


def run_subprocess(cfg: loadgen.LoadConfig, *, env: dict | None = None) -> dict:
    """Runs the binary (built if needed) in its own process and returns its result dict."""
    cfg.validate()
    binary = ensure_built()
    with tempfile.TemporaryDirectory(prefix="grpc-loadgen-") as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.run(
            command(cfg, out, binary), cwd=ROOT, env=env, capture_output=True, text=True,
            timeout=cfg.warmup_s + cfg.duration_s + cfg.timeout_s + 60,
        )  # fmt: skip
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"grpc-loadgen failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        return json.loads(out.read_text())
