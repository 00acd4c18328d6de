"""Reads a versioned catalog file (the repository's is settings.DEFAULT_CATALOG_PATH)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from billing.domain.catalog import Catalog, parse_catalog


def load_catalog(path: Path) -> tuple[Catalog, str]:
    """Returns the catalog and a fingerprint of the file's bytes."""
    raw_bytes = Path(path).read_bytes()
    return parse_catalog(json.loads(raw_bytes)), hashlib.sha256(raw_bytes).hexdigest()
