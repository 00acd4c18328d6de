"""`make bench-data`: the two benchmark datasets, built once and reused (bench/data.py does the work)."""

from __future__ import annotations

import subprocess
import sys

from bench.run import LARGE, SMALL, dataset_url, server_url


def main() -> int:
    server = server_url()
    for accounts in (SMALL, LARGE):
        subprocess.run(
            [sys.executable, "-m", "bench.data", "--database-url", dataset_url(server, accounts), "--accounts", str(accounts)],
            check=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
