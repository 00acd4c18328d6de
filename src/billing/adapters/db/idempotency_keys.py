"""Operator idempotency keys are one namespace over the audit trail and the refund intents: a key
names one request, whichever of the two records it first (docs/decisions.md, "Refund intents and
other actions' keys"). Each table's unique key guards itself; across the two, the writer of either
takes this transaction-scoped lock on the key before it looks at the other table, so two writers of
one key are serialised and the second sees the first's committed row (READ COMMITTED: each
statement reads what committed before it)."""

from __future__ import annotations

from billing.adapters.db.driver import Driver

# pg_advisory_xact_lock's two-int4 form: this namespace and the key's hash (the single-bigint locks
# of the webhook turns, the legacy import and migrations are another key space).
KEY_LOCK_NAMESPACE = 0x69646B79  # "idky"


async def lock_operator_key(driver: Driver, idempotency_key: str) -> None:
    """Held until the transaction ends. Keys hashing alike only wait for each other."""
    await driver.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (KEY_LOCK_NAMESPACE, idempotency_key))
