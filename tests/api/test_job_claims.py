"""The job store's claim protocol, on a real SQLite file shared by threads acting as processes:
several owners work on one job at once, each instance ends exactly once, a chunk whose owner
stalled is taken over whole and the stalled owner's commit writes nothing, a release hands back
only that owner's chunks."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from eaas.api.audit.store import ExplanationStore
from eaas.api.jobs.store import DONE, QUEUED, RUNNING, JobStore, Lost, Outcome
from tests.test_cli_jobs import pending, submit

pytestmark = pytest.mark.fast


@pytest.fixture
def jobs(tmp_path: Path) -> JobStore:
    store = JobStore(ExplanationStore(f"sqlite:///{tmp_path / 'explanations.db'}"))
    yield store
    store.engine.dispose()


def done(i: int) -> Outcome:
    return Outcome(i, pending=pending("tiny-xgb", i))


def test_two_owners_share_a_job_and_the_last_commit_ends_it(jobs):
    job = submit(jobs, "tiny-xgb", 5)
    a = jobs.take(job, "a", 60, 2)
    b = jobs.take(job, "b", 60, 2)
    assert a is not None and b is not None
    assert [i for i, _ in a.todo] == [0, 1] and [i for i, _ in b.todo] == [2, 3]
    assert jobs.claim(["tiny-xgb"])["id"] == job  # type: ignore[index]  # 4 is still free
    c = jobs.take(job, "a", 60, 2)
    assert c is not None and [i for i, _ in c.todo] == [4]
    assert jobs.claim(["tiny-xgb"]) is None  # everything is in someone's hands
    assert jobs.take(job, "c", 60, 2).todo == []  # type: ignore[union-attr]
    assert not jobs.commit(b, "b", [done(2), done(3)])
    assert not jobs.commit(c, "a", [done(4)])
    assert jobs.commit(a, "a", [done(0), Outcome(1, error="refused")])  # the last: job done
    got = jobs.get(job)
    assert got["status"] == DONE and got["instances"]["done"] == 4  # type: ignore[index]
    assert got["instances"]["failed"] == 1  # type: ignore[index]
    assert [(w["first"], w["last"], w["owner"], w["committed"]) for w in jobs.workers(job)] == [
        (0, 1, "a", True), (2, 3, "b", True), (4, 4, "a", True)]  # fmt: skip
    assert jobs.take(job, "a", 60, 2) is None  # the job ended


def test_a_stalled_chunk_is_taken_over_whole_and_its_first_owner_writes_nothing(jobs):
    job = submit(jobs, "tiny-xgb", 4)
    slow = jobs.take(job, "slow", 0.05, 3)
    assert slow is not None and [i for i, _ in slow.todo] == [0, 1, 2]
    time.sleep(0.1)  # its lease runs out
    assert jobs.claim(["tiny-xgb"], busy=[job]) is None  # a busy job is not offered
    again = jobs.take(job, "quick", 60, 1)  # size 1, yet the whole late chunk
    assert again is not None and again.first == 0 and [i for i, _ in again.todo] == [0, 1, 2]
    with pytest.raises(Lost):
        jobs.commit(slow, "slow", [done(0), done(1), done(2)])
    assert jobs.get(job)["instances"]["done"] == 0  # type: ignore[index]
    assert not jobs.commit(again, "quick", [done(0), done(1), done(2)])
    assert count(jobs, job) == 3  # the explanations of the chunk, once


def test_a_new_chunk_stops_before_another_owners_chunk(jobs):
    job = submit(jobs, "tiny-xgb", 6)
    first = jobs.take(job, "a", 60, 2)
    jobs.take(job, "b", 60, 2)  # 2, 3
    jobs.release(job, "a")  # a's 0, 1 are free again; b still works: the job stays running
    assert jobs.get(job)["status"] == RUNNING  # type: ignore[index]
    with pytest.raises(Lost):
        jobs.commit(first, "a", [done(0), done(1)])  # type: ignore[arg-type]
    c = jobs.take(job, "c", 60, 10)
    assert c is not None and [i for i, _ in c.todo] == [0, 1]  # not across b's 2, 3
    jobs.release(job, "b")
    jobs.release(job, "c")
    assert jobs.get(job)["status"] == QUEUED  # nobody works on it any more


def test_cancel_wins_over_a_commit_in_flight(jobs):
    job = submit(jobs, "tiny-xgb", 3)
    a = jobs.take(job, "a", 60, 3)
    assert jobs.cancel(job)["instances"]["cancelled"] == 3  # type: ignore[index]
    with pytest.raises(Lost):
        jobs.commit(a, "a", [done(0), done(1), done(2)])  # type: ignore[arg-type]
    assert count(jobs, job) == 0


def test_many_owners_at_once_end_every_instance_exactly_once(jobs):
    """Four threads, each its own owner and engine on the same SQLite file, take and commit
    chunks of 1-3 until the job ends."""
    job = submit(jobs, "tiny-xgb", 60)
    url = str(jobs.engine.url)
    seen: dict[str, list[int]] = {}

    def work(owner: str, size: int) -> None:
        own = JobStore(ExplanationStore(url))
        mine = seen.setdefault(owner, [])
        try:
            while (claim := own.take(job, owner, 60, size)) is not None and claim.todo:
                outcomes = [done(i) for i, _ in claim.todo]
                own.commit(claim, owner, outcomes)
                mine += [o.idx for o in outcomes]
        finally:
            own.engine.dispose()

    threads = [threading.Thread(target=work, args=(f"w{k}", 1 + k % 3)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    everyone = sorted(i for ids in seen.values() for i in ids)
    assert everyone == list(range(60))  # none lost, none twice
    assert sum(bool(ids) for ids in seen.values()) >= 2  # shared, not one owner's
    assert jobs.get(job)["status"] == DONE and count(jobs, job) == 60  # type: ignore[index]


def count(jobs: JobStore, job: str) -> int:
    with jobs.engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT count(*) FROM eaas_explanations e JOIN eaas_job_items i "
            "ON e.id = i.explanation_id WHERE i.job_id = :j"), {"j": job}).scalar())  # fmt: skip
