"""Every line the server process writes is one JSON object, whatever wrote it.

gRPC core (C) writes its own text to file descriptor 2: with GRPC_VERBOSITY/GRPC_TRACE set, or
when a peer's GOAWAY carries debug data, which an unauthenticated client chooses (a newline and
a forged `{"level":"INFO",...}` in it put a forged line in the log). Python itself writes there
too (an exception no one caught, "Exception ignored in ..."). So at start, fd 2 becomes a pipe:
a thread reads it and writes each line as a log record (logger "stderr", the text escaped in its
message) through the server's handler, which writes to the real stderr, kept aside. Foreign text
is wrapped, never passed through.

An uncaught exception is logged as one record with its traceback (sys.excepthook and
threading.excepthook) rather than printed line by line. At exit fd 2 is given back and the
thread drains the pipe before the process ends. What a hard crash of the process (a segfault)
writes after that thread is gone is lost: it would need a reader outside the process.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from types import TracebackType
from typing import Any, TextIO

FOREIGN_LOGGER = "stderr"
LINE_BYTES_MAX = 16 * 1024  # a longer line is cut into records of this size
DRAIN_SECONDS = 2.0  # at exit, how long the pipe may take to be read to its end
# gRPC core's own prefix: `E0101 12:00:00.000000 123 file.cc:12] ...` (absl/glog style).
_GRPC_LINE = re.compile(r"^([EWID])\d{4} ")
_LEVELS = {"E": logging.ERROR, "W": logging.WARNING, "I": logging.INFO, "D": logging.DEBUG}

log = logging.getLogger(FOREIGN_LOGGER)


class ForeignOutput:
    """fd 2 redirected into a pipe read by a thread; `real_stderr` is the stream the log handler
    must write to (not sys.stderr, which now feeds the pipe)."""

    def __init__(self) -> None:
        sys.stderr.flush()
        self._real_fd = os.dup(2)
        self.real_stderr: TextIO = os.fdopen(
            self._real_fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=True)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._reader = threading.Thread(target=self._read, args=(read_fd,), name="foreign-stderr", daemon=True)
        self._restored = False

    def start(self) -> "ForeignOutput":
        log.setLevel(logging.DEBUG)  # written by someone on purpose: kept whatever the log level
        logging.raiseExceptions = False  # a failing handler must not print to the pipe it reads
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_uncaught_in_thread
        self._reader.start()
        return self

    def restore(self) -> None:
        """Gives fd 2 back (closing the pipe's write end) and waits for the thread to read the rest."""
        if self._restored:
            return
        self._restored = True
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._real_fd, 2)
        self._reader.join(DRAIN_SECONDS)

    def _read(self, read_fd: int) -> None:
        pending = b""
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    _write_line(line)
                while len(pending) > LINE_BYTES_MAX:
                    _write_line(pending[:LINE_BYTES_MAX])
                    pending = pending[LINE_BYTES_MAX:]
        if pending:
            _write_line(pending)


def _write_line(raw: bytes) -> None:
    for start in range(0, max(len(raw), 1), LINE_BYTES_MAX):
        text = raw[start:start + LINE_BYTES_MAX].decode("utf-8", errors="backslashreplace").rstrip("\r")
        if not text.strip():
            continue
        match = _GRPC_LINE.match(text)
        log.log(_LEVELS[match.group(1)] if match else logging.WARNING, "%s", text)


def _log_uncaught(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        return
    logging.getLogger("billing").critical("uncaught %s: %s", kind.__name__, error, exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(args: Any) -> None:
    if args.exc_type is SystemExit:
        return
    logging.getLogger("billing").critical(
        "uncaught %s in thread %s", args.exc_type.__name__, getattr(args.thread, "name", "?"),
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
