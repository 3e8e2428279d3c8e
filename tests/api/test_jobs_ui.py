"""The review page's job list on a real uvicorn with a real SQLite store: each model's newest
jobs with working links, only that model's, the API key, the store off or down, a browser."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.api.conftest import live_server
from tests.reports.browser import assert_rendered, browser, screenshot_dir

KEY = "jobs-ui-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
ROW = {"f0": 0.5, "f1": -1.0, "f2": 0.25, "f3": 1.5, "f4": -0.3}


@dataclass
class Served:
    client: httpx.Client
    empty: str  # the page before any job was submitted
    xgb: list[str]  # tiny-xgb's job ids, oldest first
    mlp: str  # tiny-mlp's one job


def submit_and_wait(client: httpx.Client, model: str, timeout: float = 30.0) -> str:
    res = client.post(f"/v1/models/{model}/jobs", json={"instances": [ROW]}, headers=AUTH)
    assert res.status_code == 202, res.text
    job_id: str = res.json()["id"]
    deadline = time.monotonic() + timeout
    while (job := client.get(f"/v1/jobs/{job_id}", headers=AUTH).json())["status"] != "done":
        assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
        time.sleep(0.1)
    return job_id


@pytest.fixture(scope="module")
def served(built, tmp_path_factory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("jobs-ui")
    with live_server(models=["tiny-xgb@champion", "tiny-mlp@champion"], api_keys=[KEY],
                     store_url=f"sqlite:///{tmp}/x.db", job_poll_s=0.2) as client:  # fmt: skip
        empty = client.get("/ui", headers=AUTH).text
        xgb = [submit_and_wait(client, "tiny-xgb") for _ in range(2)]
        yield Served(client, empty, xgb, submit_and_wait(client, "tiny-mlp"))


def section(page: str, name: str) -> str:
    """One model's section of /ui (sections do not nest)."""
    start = page.index(f'<section id="{name}">')
    return page[start : page.index("</section>", start)]


def test_no_jobs_yet_is_said_per_model(served):
    for name in ("tiny-xgb", "tiny-mlp"):
        assert "No jobs yet." in section(served.empty, name)


def test_each_model_lists_its_own_jobs_newest_first_with_links(served):
    res = served.client.get("/ui", headers=AUTH)
    assert res.status_code == 200 and "default-src 'none'" in res.headers["content-security-policy"]
    xgb, mlp = section(res.text, "tiny-xgb"), section(res.text, "tiny-mlp")
    assert "No jobs yet" not in xgb and served.mlp not in xgb
    assert all(j not in mlp for j in served.xgb) and served.mlp in mlp
    assert xgb.index(served.xgb[1]) < xgb.index(served.xgb[0])  # newest first
    for job_id in served.xgb:
        row = xgb[xgb.index(f"<td class='id'>{job_id}</td>") :].split("</tr>", 1)[0]
        assert "<td class='status'>done</td>" in row and "1/1 (0, 0)" in row
        assert re.search(r"<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d</td>", row)  # created, finished
        assert f"href='/v1/jobs/{job_id}'" in row
        for fmt in ("jsonl", "parquet"):
            assert f"href='/v1/jobs/{job_id}/results?format={fmt}'" in row


def test_the_links_answer(served):
    page = section(served.client.get("/ui", headers=AUTH).text, "tiny-xgb")
    links = re.findall(r"href='(/v1/jobs/[^']+)'", page)
    assert len(links) == 3 * len(served.xgb)
    for link in links:
        res = served.client.get(link, headers=AUTH)
        assert res.status_code == 200, (link, res.text)
    one = served.client.get(f"/v1/jobs/{served.xgb[0]}", headers=AUTH).json()
    assert one["model"]["name"] == "tiny-xgb" and one["instances"]["done"] == 1


def test_the_page_needs_the_key(served):
    assert served.client.get("/ui").status_code == 401
    assert served.client.get("/ui", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_a_store_that_fails_leaves_the_rest_of_the_page(served, monkeypatch):
    from eaas.api.jobs.store import JobStore

    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("database down")

    monkeypatch.setattr(JobStore, "page", down)  # the server runs in this process's thread
    res = served.client.get("/ui", headers=AUTH)
    assert res.status_code == 200
    xgb = section(res.text, "tiny-xgb")
    assert "Jobs: store unavailable." in xgb and 'class="version"' in xgb
    assert served.xgb[0] not in xgb


def test_block_is_absent_with_the_store_off_and_says_when_it_is_down(tmp_path):
    from eaas.api.audit.store import ExplanationStore
    from eaas.api.jobs.store import JobStore
    from eaas.api.routes.review import jobs_block

    assert jobs_block(None, "tiny-xgb") == ""
    store = ExplanationStore(f"sqlite:///{tmp_path}/no/such/dir/x.db")  # cannot be opened
    try:
        assert "store unavailable" in jobs_block(JobStore(store), "tiny-xgb")
    finally:
        store.engine.dispose()


def test_job_values_are_escaped():
    from eaas.api.routes.review import _job_row

    job = {"id": "a'b<c>", "status": "failed", "model": {"name": "m", "version": "1"},
           "instances": {"total": 2, "done": 0, "failed": 2, "cancelled": 0, "pending": 0},
           "created_at": "2024-01-02T03:04:05.678+00:00", "finished_at": None,
           "error": "<script>alert(1)</script>"}  # fmt: skip
    row = _job_row(job)
    assert "<script>" not in row and "&lt;script&gt;" in row and "a'b<c>" not in row
    assert "href='/v1/jobs/a%27b%3Cc%3E'" in row and "2024-01-02 03:04:05" in row


def test_page_renders_in_a_browser(served, tmp_path):
    from PIL import Image

    base = str(served.client.base_url).rstrip("/")
    shot = screenshot_dir(tmp_path) / "ui-jobs.png"
    with browser() as chrome:
        page = chrome.open(f"{base}/ui", shot, headers=AUTH)
    assert_rendered(page, "eaas · model review", min_images=2)
    assert "Jobs" in page.text and all(j in page.text for j in [*served.xgb, served.mlp])
    with Image.open(shot) as img:
        assert img.width >= 800 and img.height >= 400
        colors = img.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colors is None or len(colors) > 50  # None: more colours than that; not blank
