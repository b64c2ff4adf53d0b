"""Indexes for the ledger's hot reads: spendable lots in FIFO order, history, due expiries."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T04:11:20:000000"
VERSION = "1.38.0"
DESCRIPTION = "ledger indexes and the one-reversal-per-credit guard"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="points", description=DESCRIPTION)

    async def run():
        from service.points.tables import LedgerEntry

        for ddl in (
            "CREATE INDEX IF NOT EXISTS point_lots_open ON point_lots "
            "(tenant_id, member_id, currency, expires_at, id) WHERE remaining > 0",
            "CREATE INDEX IF NOT EXISTS point_lots_due ON point_lots (expires_at) "
            "WHERE remaining > 0 AND expires_at IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS point_lots_entry ON point_lots (entry_id)",
            "CREATE INDEX IF NOT EXISTS ledger_entries_history ON ledger_entries "
            "(tenant_id, member_id, id DESC)",
            "CREATE INDEX IF NOT EXISTS ledger_entries_source ON ledger_entries "
            "(tenant_id, source_ref) WHERE source_ref IS NOT NULL",
            "CREATE UNIQUE INDEX IF NOT EXISTS ledger_entries_one_reversal ON ledger_entries "
            "(reverses_entry_id) WHERE reverses_entry_id IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS lot_allocations_entry ON lot_allocations (entry_id)",
            "CREATE INDEX IF NOT EXISTS lot_allocations_lot ON lot_allocations (lot_id)",
            "CREATE INDEX IF NOT EXISTS member_levels_review ON member_levels (review_at) "
            "WHERE review_at IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS ledger_entries_growth_window ON ledger_entries "
            "(tenant_id, member_id, created_at) WHERE currency = 'growth'",
        ):
            await LedgerEntry.raw(ddl)

    manager.add_raw(run)
    return manager
