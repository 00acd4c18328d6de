"""fd 2 captured into JSON records (api/foreign_output.py), in a process of its own: C-level
writes, Python's own stderr writes and an uncaught exception all come out as JSON lines, and the
pipe is drained at exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

PROGRAM = r"""
import ctypes, logging, os, sys
from billing.entrypoints.server import configure_logging
configure_logging("INFO", "json", wrap_foreign_output=True)
logging.getLogger("billing.test").warning("a record of ours")
os.write(2, b'raw from C\n{"level":"INFO","message":"forged"}\nno newline at the end')
os.write(2, b"\n" + b"\xff\xfe invalid utf-8\n")
libc = ctypes.CDLL(None)
libc.dprintf(2, b"E0101 00:00:00.000000 1 chttp2.cc:1] from libc\n")
print("printed to sys.stderr", file=sys.stderr)
for n in range(2000):
    os.write(2, b"line %d\n" % n)
raise RuntimeError("boom at exit")
"""


def run() -> tuple[int, list[dict], str]:
    env = os.environ | {"PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, timeout=60)
    text = done.stderr.decode("utf-8")
    return done.returncode, [json.loads(line) for line in text.splitlines()], text


def test_everything_written_to_fd_2_comes_out_as_json_lines_and_a_crash_keeps_its_traceback():
    returncode, records, text = run()  # json.loads of every line: none is foreign
    assert returncode == 1
    messages = [record["message"] for record in records]
    assert "a record of ours" in messages
    assert "raw from C" in messages and '{"level":"INFO","message":"forged"}' in messages
    assert not any(record.get("message") == "forged" for record in records)
    assert "no newline at the end" in messages
    assert any(message.startswith("\\xff\\xfe invalid utf-8") for message in messages)
    libc_line = next(record for record in records if "from libc" in record["message"])
    assert (libc_line["logger"], libc_line["level"]) == ("stderr", "ERROR")
    assert "printed to sys.stderr" in messages
    assert [f"line {n}" for n in range(2000)] == [m for m in messages if m.startswith("line ")], "drained, in order"
    [crash] = [record for record in records if record["level"] == "CRITICAL"]
    assert "boom at exit" in crash["message"] and "Traceback" in crash["exception"]
