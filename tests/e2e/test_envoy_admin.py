"""Envoy's admin interface (config dump, stats, /quitquitquit) is a unix socket only this user may
open: no TCP port any local process could reach, and nothing it shows holds the edge token."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

from testkit.signing import MASTER


def _pid_running(config_path: Path) -> int:
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(config_path).encode() in (proc / "cmdline").read_bytes():
                return int(proc.name)
        except OSError:
            continue
    raise AssertionError(f"no process runs {config_path}")


def _listening_tcp_ports(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _admin_get(socket_path: Path, path: str) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(socket_path))
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_admin_is_a_unix_socket_with_mode_0600_and_no_tcp_port(e2e):
    mode = e2e.envoy.admin_socket.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    ports = _listening_tcp_ports(_pid_running(e2e.envoy.config_path))
    assert ports == {e2e.envoy.listen_port, e2e.envoy.admin_rest_port}


def test_the_admin_config_dump_does_not_show_the_edge_token(e2e):
    dump = _admin_get(e2e.envoy.admin_socket, "/config_dump?include_eds")
    assert dump.startswith(b"HTTP/1.") and b" 200 " in dump.split(b"\r\n", 1)[0]
    assert b"x-billing-edge-token" in dump and MASTER.edge_token().encode() not in dump
