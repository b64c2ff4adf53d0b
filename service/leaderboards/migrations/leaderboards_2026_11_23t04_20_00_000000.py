"""Indexes Piccolo's column API cannot express: ranking order of scores, open periods."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T04:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "board_scores ranking index; open board periods partial index"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="leaderboards", description=DESCRIPTION)

    async def run():
        from service.leaderboards.tables import BoardScore

        # Operator exports page through a period in rank order.
        await BoardScore.raw(
            "CREATE INDEX IF NOT EXISTS board_scores_rank ON board_scores "
            "(board_id, period_id, score DESC, reached_at, member_id)"
        )
        # The close job only looks at periods still open.
        await BoardScore.raw(
            "CREATE INDEX IF NOT EXISTS board_periods_open ON board_periods (ends_at) "
            "WHERE status = 'open'"
        )

    manager.add_raw(run)
    return manager
