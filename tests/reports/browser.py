"""A real headless Chromium driven over the DevTools protocol on a pipe (no extra packages).

`--remote-debugging-pipe` makes Chromium read commands from fd 3 and write replies and events to
fd 4, each message JSON terminated by NUL. Console errors, uncaught exceptions and failed loads
(Log domain: 404 images, blocked requests) are collected per page.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]
LIMIT_S = 60.0  # a safety net against a hung browser, not a performance assertion


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageReport:
    title: str
    images: list[dict[str, Any]]
    errors: list[str] = field(default_factory=list)
    text: str = ""


class Chromium:
    def __init__(self, binary: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="eaas-chromium-")
        cmd_r, self._cmd_w = os.pipe()  # we write commands, Chromium reads them on fd 3
        self._out_r, out_w = os.pipe()  # Chromium writes on fd 4, we read

        def child_fds() -> None:
            os.dup2(cmd_r, 3)
            os.dup2(out_w, 4)

        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            preexec_fn=child_fds,
            pass_fds=(3, 4),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(cmd_r)
        os.close(out_w)
        self._id, self._buf, self.events = 0, b"", []

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self._cmd_w)
            os.close(self._out_r)
            shutil.rmtree(self.profile, ignore_errors=True)

    def _read(self) -> dict:
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._out_r], [], [], LIMIT_S)
            if not ready:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._out_r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def send(self, method: str, session: str | None = None, **params: Any) -> dict:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str) -> dict:
        deadline = time.monotonic() + LIMIT_S
        while time.monotonic() < deadline:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method and ev.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(self._read())
        raise TimeoutError(f"no {method}")

    def open(self, url: str, screenshot: Path, headers: dict[str, str] | None = None) -> PageReport:
        """Load `url` in a fresh tab, wait for `load`, inspect it and save a full-page PNG."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        s = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", s)
        if headers:
            self.send("Network.setExtraHTTPHeaders", s, headers=headers)
        self.send("Emulation.setDeviceMetricsOverride", s, width=1280, height=900,
                  deviceScaleFactor=1, mobile=False)  # fmt: skip
        self.send("Page.navigate", s, url=url)
        self.wait_event("Page.loadEventFired", s)
        report = self._inspect(s)
        self._screenshot(s, screenshot)
        report.errors = self._errors(s)
        self.send("Target.closeTarget", targetId=target)
        return report

    def _inspect(self, s: str) -> PageReport:
        js = """JSON.stringify({title: document.title, text: document.body.innerText,
          images: [...document.images].map(i => ({src: i.src.slice(0, 120), complete: i.complete,
          naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight}))})"""
        res = self.send("Runtime.evaluate", s, expression=js, returnByValue=True)
        data = json.loads(res["result"]["value"])
        return PageReport(data["title"], data["images"], text=data["text"])

    def _screenshot(self, s: str, path: Path) -> None:
        size = self.send("Page.getLayoutMetrics", s)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.send("Page.captureScreenshot", s, format="png", captureBeyondViewport=True,
                         clip=clip)  # fmt: skip
        path.write_bytes(base64.b64decode(shot["data"]))

    def _errors(self, s: str) -> list[str]:
        out = []
        for ev in [e for e in self.events if e.get("sessionId") == s]:
            method, p = ev.get("method"), ev.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value")) for a in p.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                out.append("exception: " + p["exceptionDetails"].get("text", ""))
            elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif method == "Network.loadingFailed":
                out.append(f"network: {p.get('errorText')}")
        self.events = [e for e in self.events if e.get("sessionId") != s]
        return out


@contextmanager
def browser() -> Iterator[Chromium]:
    """A headless Chromium for one test module; skips (with the reason) when none is installed."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium): no browser check")
    c = Chromium(binary)
    try:
        yield c
    finally:
        c.close()


def screenshot_dir(fallback: Path) -> Path:
    """EAAS_SCREENSHOT_DIR keeps screenshots for a human to look at; else a temp dir."""
    out = Path(os.environ.get("EAAS_SCREENSHOT_DIR") or fallback)
    out.mkdir(parents=True, exist_ok=True)
    return out


def assert_rendered(page: PageReport, title: str, min_images: int) -> None:
    assert page.title == title
    assert page.errors == [], page.errors
    assert len(page.images) >= min_images, page.images
    broken = [i["src"] for i in page.images if not i["complete"] or i["naturalWidth"] == 0]
    assert broken == []
