"""GetCatalog: the catalog in one currency, with an ETag per (catalog content, currency)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from billing.domain.catalog import Catalog


@dataclass(frozen=True)
class CatalogView:
    catalog: Catalog
    currency: str
    fallback_from: str | None
    etag: str


def catalog_in_currency(catalog: Catalog, catalog_fingerprint: str, requested_currency: str) -> CatalogView:
    """catalog_fingerprint: a hash of the catalog file, so an edit changes the ETag even without a version bump."""
    currency, fallback_from = catalog.resolve_currency(requested_currency)
    digest = hashlib.sha256(f"{catalog_fingerprint}|{currency}|{fallback_from}".encode()).hexdigest()[:16]
    return CatalogView(
        catalog=catalog, currency=currency, fallback_from=fallback_from,
        etag=f'"{catalog.version}-{currency}-{digest}"',
    )


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison over a list of tags, or '*'."""
    candidates = [tag.strip() for tag in if_none_match.split(",")]
    bare = etag.removeprefix("W/")
    return "*" in candidates or any(tag.removeprefix("W/") == bare for tag in candidates)
