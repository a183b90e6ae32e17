"""faust table recovery that seeks the stream partitions *before* it resumes them.

The bug this fixes (faust-streaming 0.15.3, `Recovery.on_recovery_completed`): when the
changelogs have been read, faust first resumes the stream partitions and only then awaits
`consumer.perform_seek()` (one committed-offset request per partition), and after that
calls `flow_control.resume()`, which clears every stream queue (`clear_on_resume=True`).
During recovery aiokafka keeps prefetching the paused stream partitions, so while the
seek is awaited faust's fetcher already hands those prefetched records to the stream
queues and advances its per-partition "read offset" to the last of them. The seek resets
the read offset to the committed offset, but the fetcher, still walking the same batch,
moves it forward again; then the queue is cleared. When aiokafka fetches the records again
from the committed offset, faust drops every one below its read offset as already read.
Result: a stretch of the partition that nobody processes and nobody will ever fetch again
in this process — the worker sits with lag and no progress (what
tests/integration/test_crash_recovery.py saw after a SIGKILL + restart: e.g. repartition
partition committed at 20, end 220, nothing more consumed).

The fix is only the order: seek while the stream partitions are still paused (the fetcher
does not take their records then), and resume them afterwards with no `await` between the
resume and `flow_control.resume()`, so nothing can slip into a queue that is about to be
cleared. Everything else is faust's own code path.
"""

from __future__ import annotations

from typing import Any, cast

from faust.tables import TableManager
from faust.tables.recovery import Recovery


class SeekFirstRecovery(Recovery):
    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        app: Any = self.app
        consumer = app.consumer
        self.log.info("Restore complete!")
        await app.on_rebalance_complete.send()
        self._set_recovery_ended()
        for table in self.tables.values():
            await table.on_recovery_completed(
                self.actives_for_table[table], self.standbys_for_table[table]
            )
        if app.consumer_generation_id != generation_id:
            self.log.warning("Recovery rebalancing again")
            return
        assignment = consumer.assignment()
        if assignment:
            self.log.info("Seek stream partitions to committed offsets (still paused).")
            await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
        # From here to flow_control.resume(): no await, so no record reaches a queue
        # that resume() clears.
        consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
        self.completed.set()
        app.flow_control.resume()
        consumer.resume_flow()
        await app._fetcher.maybe_start()
        self.tables.on_actives_ready()
        if not app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        app.on_rebalance_end()
        self.log.info("Worker ready")


class SeekFirstTableManager(TableManager):
    """faust's TableManager with `SeekFirstRecovery` (pass as `App(TableManager=...)`)."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(
                self.app, cast(Any, self), beacon=self.beacon, loop=self.loop
            )
        return self._recovery
