"""Reads the versioned catalog file shipped in the repository."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from billing.domain.catalog import Catalog, parse_catalog

DEFAULT_CATALOG_PATH = Path(__file__).resolve().parents[3] / "catalog" / "catalog.json"


def load_catalog(path: Path = DEFAULT_CATALOG_PATH) -> tuple[Catalog, str]:
    """Returns the catalog and a fingerprint of the file's bytes."""
    raw_bytes = Path(path).read_bytes()
    return parse_catalog(json.loads(raw_bytes)), hashlib.sha256(raw_bytes).hexdigest()
