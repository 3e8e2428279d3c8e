"""A line per Spark stage while the job runs (works in logs too, unlike a \\r progress bar)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

from pyspark import SparkContext


class StageProgress:
    """Polls Spark's status tracker in a daemon thread and prints when a stage moves."""

    def __init__(
        self, sc: SparkContext, echo: Callable[[str], None], interval: float = 2.0
    ) -> None:
        self.sc = sc
        self.echo = echo
        self.interval = interval
        self.phase = ""
        self._seen: dict[int, tuple[int, int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="eaas-progress", daemon=True)

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        self.echo(f"[{time.strftime('%H:%M:%S')}] {phase}")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def poll(self) -> None:
        tracker = self.sc.statusTracker()
        for sid in sorted(tracker.getActiveStageIds()):
            info = tracker.getStageInfo(sid)
            if info is None:
                continue
            state = (info.numCompletedTasks, info.numActiveTasks, info.numFailedTasks)
            if self._seen.get(sid) == state:
                continue
            self._seen[sid] = state
            failed = f", {info.numFailedTasks} failed" if info.numFailedTasks else ""
            self.echo(
                f"  {self.phase} · stage {sid}: {info.numCompletedTasks}/{info.numTasks} tasks "
                f"done, {info.numActiveTasks} running{failed}"
            )

    def __enter__(self) -> StageProgress:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 1)
