"""The explanation store on a real PostgreSQL server, started by the test from the Debian
packages (`apt-get install postgresql`; CI installs them), on a free port in a temp folder."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.api.conftest import free_port, live_server
from tests.api.test_audit import explain, rows, stored


def pg_bin() -> Path | None:
    """The newest installed server's bin folder (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: p.split("/")[-3])
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def as_postgres(cmd: list[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root: run them as the `postgres` user then."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
    return [runuser, "-u", "postgres", "--", *cmd]


class Postgres:
    """A throwaway server: initdb into a temp folder, pg_ctl start/stop on a free port."""

    def __init__(self, bindir: Path) -> None:
        self.bindir, self.port = bindir, free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="eaas-pg-"))
        self.data = self.tmp / "data"
        if os.geteuid() == 0:
            shutil.chown(self.tmp, "postgres")
        self.url = f"postgresql+psycopg://eaas@127.0.0.1:{self.port}/postgres"

    def _run(self, *cmd: str) -> None:
        full = as_postgres([str(self.bindir / cmd[0]), *cmd[1:]])
        subprocess.run(full, check=True, capture_output=True, text=True, timeout=120)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "eaas", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.tmp} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.tmp / "log"),
                  "-w", "start")  # fmt: skip

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A throwaway server for a module's tests (skipped where the binaries are missing)."""
    bindir = pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install -y postgresql)")
    server = Postgres(bindir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    with running_postgres() as server:
        yield server


def test_store_on_postgresql(built, pg):
    pg_url = pg.url
    import sqlalchemy as sa

    from eaas.api.audit.store import SCHEMA_VERSION, ExplanationStore
    from eaas.explanations import verify

    with live_server(models=["tiny-xgb@champion"], store_url=pg_url) as client:
        ids = [explain(client, "tiny-xgb", rows(2, 5.0 + i)).json() for i in range(2)]
        ids = [e["id"] for body in ids for e in body["explanations"]]
        rec = stored(client, ids[-1])
        assert rec["input"] == rows(2, 6.0)[1] and rec["model"]["name"] == "tiny-xgb"
        page1 = client.get("/v1/models/tiny-xgb/explanations", params={"limit": 3}).json()
        page2 = client.get("/v1/models/tiny-xgb/explanations",
                           params={"limit": 3, "cursor": page1["next_cursor"]}).json()  # fmt: skip
        got = [e["id"] for e in page1["explanations"] + page2["explanations"]]
        assert got == ids[::-1] and page2["next_cursor"] is None
    store = ExplanationStore(pg_url)
    assert store.schema_version() == SCHEMA_VERSION
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM eaas_explanations")).scalar() == 4
        assert conn.dialect.name == "postgresql"
    store.engine.dispose()
    assert verify(ids[0], url=pg_url).identical


def test_stopping_postgresql_keeps_serving(built, pg):
    """The database goes away under a running service: 200s go on, the drops are counted."""
    from tests.api.conftest import metric

    with live_server(models=["tiny-xgb@champion"], store_url=pg.url) as client:
        stored(client, explain(client, "tiny-xgb", rows(1, 9.0)).json()["explanations"][0]["id"])
        pg.stop()
        try:
            res = explain(client, "tiny-xgb", rows(2, 11.0))
            assert len(res.json()["explanations"]) == 2
            deadline = time.monotonic() + 30
            while metric(client, "eaas_store_dropped_total") < 2:
                assert time.monotonic() < deadline, "drops were not counted"
                time.sleep(0.2)
            assert (
                client.get(f"/v1/explanations/{res.json()['explanations'][0]['id']}").status_code
                == 503
            )
        finally:
            pg.start()
        # back up: new explanations are stored again
        again = explain(client, "tiny-xgb", rows(1, 13.0)).json()["explanations"][0]["id"]
        assert stored(client, again)["id"] == again


def test_job_killed_mid_run_resumes_on_postgresql(slow_mlp, pg):
    """The SIGKILL-and-restart check of tests/api/test_jobs_kept.py, on PostgreSQL."""
    from tests.api.test_jobs_kept import kill_mid_job_and_resume

    kill_mid_job_and_resume(pg.url, slow_mlp)
