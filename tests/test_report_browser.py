"""The report as a person sees it: index.html opened in a real headless browser (Chromium).

The report folder is served over HTTP on 127.0.0.1. A small check page, served next to it,
loads index.html in a frame and, once everything has loaded, writes how many images the report
has and which of them did not load (``complete && naturalWidth > 0``); Chromium's
``--dump-dom`` prints that. Skipped where Chromium is absent, unless HPCTUNE_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers import synthetic, synthetic_spec, write_spec

import hpctune as api

BROWSERS = ("chromium", "chromium-browser", "google-chrome")

CHECK_PAGE = b"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>check</title></head><body>
<iframe id="report" src="index.html" width="1400" height="1000"></iframe>
<pre id="result">not loaded</pre>
<script>
window.addEventListener("load", function () {
  var doc = document.getElementById("report").contentDocument;
  var images = Array.prototype.slice.call(doc.images);
  var broken = images.filter(function (img) {
    return !(img.complete && img.naturalWidth > 0);
  }).map(function (img) { return img.getAttribute("src"); });
  var sizes = images.map(function (img) { return [img.naturalWidth, img.naturalHeight]; });
  document.getElementById("result").textContent = "RESULT " + JSON.stringify(
    {title: doc.title, images: images.length, broken: broken, sizes: sizes});
});
</script>
</body></html>
"""


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("HPCTUNE_REQUIRE_BROWSER") == "1":
        pytest.fail("HPCTUNE_REQUIRE_BROWSER=1 but no Chromium found (apt-get install chromium)")
    pytest.skip(
        "no Chromium on this machine (apt-get install chromium); set "
        "HPCTUNE_REQUIRE_BROWSER=1 to make this a failure"
    )
    return None


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[tuple[str, int]]

    def do_GET(self) -> None:
        if self.path == "/__check.html":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(CHECK_PAGE)))
            self.end_headers()
            self.wfile.write(CHECK_PAGE)
            return
        super().do_GET()

    def log_request(self, code: object = "-", size: object = "-") -> None:
        self.requests.append((self.path, int(code) if str(code).isdigit() else 0))

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[object]:
    servers = []

    def start(folder: Path) -> tuple[str, list[tuple[str, int]]]:
        requests: list[tuple[str, int]] = []
        handler = type("Handler", (_Handler,), {"requests": requests})
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", requests

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def open_in_browser(browser: str, url: str, profile: Path) -> dict:
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    match = re.search(r"RESULT (\{.*\})", done.stdout)
    assert match, f"no result from {browser} (exit {done.returncode}): {done.stderr[-2000:]}"
    return json.loads(match.group(1).replace("&quot;", '"'))


def test_every_image_of_the_report_loads_in_a_browser(tmp_path, dask_client, serve):
    browser = find_browser()
    sea = np.zeros(6, dtype=bool)
    sea[2] = True
    synthetic(cells=6, steps=300, sea=sea).to_netcdf(tmp_path / "cells.nc")
    spec = synthetic_spec(tmp_path / "cells.nc", data__test={"from": "2010-04-01"})
    job = write_spec(tmp_path, spec)
    api.run(job, client=dask_client)
    report = api.report(job)

    base, requests = serve(report.folder)
    seen = open_in_browser(browser, f"{base}/__check.html", tmp_path / "profile")
    assert seen["title"] == "synthetic: hpctune report"
    assert seen["images"] == len(report.figures) >= 8
    assert seen["broken"] == []
    assert all(width >= 300 and height >= 250 for width, height in seen["sizes"])
    fetched = {path.lstrip("/") for path, code in requests if code == 200}
    assert {f.name for f in report.figures} <= fetched

    # The check itself sees a broken image: a damaged file and a missing one.
    (report.folder / "params.png").write_bytes(b"not a png")
    (report.folder / "fit_seconds.png").unlink()
    damaged = open_in_browser(browser, f"{base}/__check.html", tmp_path / "profile2")
    assert sorted(damaged["broken"]) == ["fit_seconds.png", "params.png"]
