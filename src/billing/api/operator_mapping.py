"""The console's read results -> OperatorService messages (operator.proto). Shape and format only."""

from __future__ import annotations

from datetime import datetime, timezone

from billing.api.mapping import balance, hold, saturate_int32, timestamp, totals
from billing.domain.activity import HourCounts
from billing.domain.auto_topup import REQUIRES_ACTION
from billing.domain.console import LedgerLine, MigrationRunRecord
from billing.service.migration_runs import RunsPage
from billing.service.operator_account import AccountOverview
from billing.service.operator_health import ServiceHealth
from billing.service.operator_ledger import LedgerPage
from billing.service.operator_search import AccountFound
from billing.service.operator_usage import AccountUsage
from billing.service.results import HoldView
from billing.v1 import balance_pb2, operator_pb2


def search(found: list[AccountFound]) -> operator_pb2.SearchAccountsResponse:
    return operator_pb2.SearchAccountsResponse(matches=[
        operator_pb2.AccountMatch(
            user_id=f.user_id, matched_by=f.matched_by, plan_key=f.plan_key, subscription_status=f.subscription_status,
            totals=totals(f.totals), created_at=timestamp(f.created_at),
        )
        for f in found
    ])


def overview(result: AccountOverview) -> operator_pb2.AccountOverview:
    account, extras = result.report.account, result.extras
    topup = account.auto_topup
    message = operator_pb2.AccountOverview(
        user_id=account.account_id, created_at=timestamp(account.created_at), version=account.version,
        balance=balance(result.report),
        holds=[hold(HoldView(h.hold_id, account.account_id, h.operation, h.held_seconds, h.committed_seconds,
                             str(h.state), h.expires_at)) for h in extras.holds],
        payment_profile=operator_pb2.PaymentProfile(
            stripe_customer_id=extras.customer_id or "", stripe_subscription_id=extras.subscription_id or ""),
        auto_topup=operator_pb2.AutoTopupDetail(
            state=balance_pb2.AutoTopupState(
                enabled=topup.enabled, threshold_seconds=topup.threshold_seconds, package_key=topup.package_key or "",
                pending=topup.pending, last_failure=topup.last_failure or "",
                action_required=topup.last_failure == REQUIRES_ACTION,
            ),
            failures=topup.failures,
        ),
        keys=[operator_pb2.IssuedKey(key_id=k.key_id, scope=k.scope, user_id=k.user_id, created_at=timestamp(k.created_at),
                                     expires_at=timestamp(k.expires_at)) for k in extras.keys],
        payments=[operator_pb2.AccountPayment(
            payment_id=p.payment_id, kind=p.kind, item_key=p.item_key, amount_cents=p.amount_cents, currency=p.currency,
            granted_seconds=p.granted_seconds, refunded_cents=p.refunded_cents, paid_at=timestamp(p.paid_at),
        ) for p in extras.payments],
        alert_thresholds_seconds=list(account.alerts.thresholds_seconds or ()),
        ledger_sum_seconds=saturate_int32(extras.ledger_sum_seconds),
    )
    if topup.retry_at is not None:
        message.auto_topup.retry_at.CopyFrom(timestamp(topup.retry_at))
    if topup.pending_since is not None:
        message.auto_topup.pending_since.CopyFrom(timestamp(topup.pending_since))
    for key, issued in zip(message.keys, extras.keys):
        if issued.revoked_at is not None:
            key.revoked_at.CopyFrom(timestamp(issued.revoked_at))
    return message


def ledger_row(line: LedgerLine) -> operator_pb2.LedgerRow:
    row = operator_pb2.LedgerRow(
        event_seq=line.event_seq, type=line.type, seconds=line.seconds, reason=line.reason,
        occurred_at=timestamp(line.occurred_at), operation=line.operation or "", bucket_seq=line.bucket_seq,
        balance_after_seconds=saturate_int32(line.balance_after_seconds),
        available_after_seconds=saturate_int32(line.available_after_seconds),
        expired_before_seconds=saturate_int32(line.expired_before_seconds),
    )
    row.metadata.update(line.metadata)
    return row


def ledger(page: LedgerPage) -> operator_pb2.ListAccountLedgerResponse:
    return operator_pb2.ListAccountLedgerResponse(
        rows=[ledger_row(line) for line in page.lines], next_page_token=page.next_page_token,
        expired_since_last_row_seconds=saturate_int32(page.expired_since_last_row_seconds))


def usage(result: AccountUsage) -> operator_pb2.AccountUsage:
    return operator_pb2.AccountUsage(
        rows=[operator_pb2.OperationUsage(date=r.day.isoformat(), operation=r.operation, seconds=saturate_int32(r.seconds))
              for r in result.rows],
        total_seconds=saturate_int32(result.total_seconds),
    )


def health(result: ServiceHealth) -> operator_pb2.ServiceHealth:
    counts = result.counts
    message = operator_pb2.ServiceHealth(
        replicas=[operator_pb2.ReplicaSeen(replica_id=r.replica_id, host=r.host, pid=r.pid,
                                           started_at=timestamp(r.started_at), seen_at=timestamp(r.seen_at))
                  for r in counts.replicas],
        database_ok=result.database_ok, database_latency_ms=result.database_latency_ms,
        pool=operator_pb2.PoolState(size=result.pool.size, available=result.pool.available,
                                    waiting=result.pool.waiting, max_size=result.pool.max_size),
        webhook_undispatched_events=counts.webhook_undispatched_events,
        webhook_pending_deliveries=counts.webhook_pending_deliveries,
        webhook_failed_last_24h=counts.webhook_failed_last_24h, stripe_events_kept=counts.stripe_events_kept,
    )
    if counts.last_tick_at is not None:
        message.last_tick_at.CopyFrom(timestamp(counts.last_tick_at))
    return message


def activity(hours: list[tuple[datetime, HourCounts]]) -> operator_pb2.ServiceActivity:
    return operator_pb2.ServiceActivity(hours=[
        operator_pb2.HourActivity(
            hour_at=timestamp(hour.astimezone(timezone.utc)), consumed_seconds=saturate_int32(c.consumed_seconds),
            consumes=saturate_int32(c.consumes), refusals=saturate_int32(c.refusals),
            topups_succeeded=saturate_int32(c.topups_succeeded), topups_failed=saturate_int32(c.topups_failed),
            webhooks_delivered=saturate_int32(c.webhooks_delivered), webhooks_failed=saturate_int32(c.webhooks_failed),
        )
        for hour, c in hours
    ])


def migration_run(run: MigrationRunRecord) -> operator_pb2.MigrationRun:
    message = operator_pb2.MigrationRun(
        run_id=run.run_id, source_file=run.source_file, started_at=timestamp(run.started_at),
        rows_read=run.rows_read, accounts_migrated=run.accounts_migrated, accounts_skipped=run.accounts_skipped,
        bad_lines=run.bad_lines,
        bad_line_samples=[operator_pb2.BadLine(line=s.line, error=s.error) for s in run.bad_line_samples],
    )
    if run.finished_at is not None:
        message.finished_at.CopyFrom(timestamp(run.finished_at))
    return message


def migration_runs(page: RunsPage) -> operator_pb2.ListMigrationRunsResponse:
    return operator_pb2.ListMigrationRunsResponse(
        runs=[migration_run(r) for r in page.runs], next_page_token=page.next_page_token)
