"""The page in a real browser: Debian's chromium, headless, driven over the DevTools protocol,
loads the page of three cameras (two real RTSP streams and a looping file), waits for each live
picture to change, and saves a screenshot that must not be blank."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import aiohttp
import cv2
import numpy as np

from tests.browser import chromium
from tests.conftest import skip_unless_ci, write_clip
from tests.service.conftest import TOKEN
from tests.service.serving import Served

#: Resolves to the cameras whose <img> showed two different pictures within the time given.
PICTURES_CHANGE = """
(async () => {
  const grab = (img) => {
    const canvas = document.createElement("canvas"); canvas.width = 64; canvas.height = 36;
    const context = canvas.getContext("2d"); context.drawImage(img, 0, 0, 64, 36);
    return Array.from(context.getImageData(0, 0, 64, 36).data).join(",");
  };
  const images = Array.from(document.querySelectorAll("img[data-camera]"));
  const first = {}, changed = new Set();
  for (let step = 0; step < 200 && changed.size < images.length; step++) {
    for (const img of images) {
      if (!img.naturalWidth) continue;
      const now = grab(img);
      if (!(img.dataset.camera in first)) first[img.dataset.camera] = now;
      else if (now !== first[img.dataset.camera]) changed.add(img.dataset.camera);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return Array.from(changed).sort();
})()
"""


class Chromium:
    """Headless chromium with a DevTools port; one page to drive."""

    def __init__(self, profile: Path) -> None:
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if not binary:
            skip_unless_ci("needs Debian's chromium (apt-get install chromium; .ci/run installs it)")
        self.process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", f"--user-data-dir={profile}",
             "--window-size=1280,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        self.devtools = None
        while time.monotonic() < deadline and self.devtools is None:
            line = self.process.stderr.readline()
            found = re.search(r"DevTools listening on ws://([\d.]+:\d+)/", line)
            self.devtools = found.group(1) if found else None
        assert self.devtools, "chromium printed no DevTools address"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


async def look_at(devtools: str, url: str, screenshot: Path) -> list[str]:
    """Open ``url``, wait for the live pictures to change, save a screenshot; the cameras seen changing."""
    async with aiohttp.ClientSession() as session:
        targets = await (await session.get(f"http://{devtools}/json/list")).json()
        page = next(t for t in targets if t["type"] == "page")
        async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as socket:
            counter = 0

            async def call(method: str, **params) -> dict:
                nonlocal counter
                counter += 1
                await socket.send_json({"id": counter, "method": method, "params": params})
                async for message in socket:
                    reply = json.loads(message.data)
                    if reply.get("id") == counter:
                        assert "error" not in reply, reply
                        return reply["result"]
                raise AssertionError("chromium closed the DevTools connection")

            await call("Page.enable")
            await call("Page.navigate", url=url)
            for _ in range(300):  # navigation is under way: wait for the page's pictures to exist
                found = await call("Runtime.evaluate", expression='document.querySelectorAll("img[data-camera]").length',
                                   returnByValue=True)
                if found["result"].get("value", 0) >= 1:
                    break
                await asyncio.sleep(0.1)
            changed = await call("Runtime.evaluate", expression=PICTURES_CHANGE, awaitPromise=True, returnByValue=True)
            await asyncio.sleep(1.5)  # a stats refresh, for the picture
            shot = await call("Page.captureScreenshot", format="png")
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            return changed["result"]["value"]


def test_the_page_shows_every_camera_live(three_cameras, tmp_path: Path) -> None:
    served, _ = three_cameras
    served.wait_for(lambda: min(f["frames_processed"] for f in served.stats().values()) >= 3, 90, "pictures")
    browser = Chromium(tmp_path / "profile")
    try:
        screenshot = tmp_path / "page.png"
        changed = asyncio.run(look_at(browser.devtools, f"{served.url}?token={TOKEN}", screenshot))
    finally:
        browser.stop()
    assert changed == ["demo", "north", "south"]
    picture = cv2.imread(str(screenshot))
    assert picture is not None and picture.shape[1] == 1280
    # Not blank: the live pictures and the figures make many distinct colours and strong contrast.
    assert picture.std() > 20 and len(np.unique(picture.reshape(-1, 3), axis=0)) > 500


def local_input(moment: float) -> str:
    """Seconds since 1970 as a datetime-local input with ``step="1"`` holds them: local time, no
    zone, whole seconds (a fraction fails the form's step check: it would not submit)."""
    return datetime.fromtimestamp(moment).strftime("%Y-%m-%dT%H:%M:%S")


def whole_second_inside(segment: dict) -> int | None:
    """A whole second a tenth of a second or more inside ``segment`` (an API row), if it spans one:
    an instant that only this segment holds."""
    start, end = (datetime.fromisoformat(segment[key]).timestamp() for key in ("start", "end"))
    second = math.ceil(start + 0.1)
    return second if second < end - 0.1 else None


def test_the_page_plays_a_cameras_recordings_in_a_time_range(tmp_path: Path) -> None:
    write_clip(tmp_path / "demo.mp4", frames=60, size=(320, 180), fps=15, audio=None)
    (tmp_path / "cameras.yaml").write_text(
        "cameras:\n  - {name: demo, source: demo.mp4, loop: true, detect_fps: 5, record: true, segment_seconds: 1}\n"
        "  - {name: plain, source: demo.mp4, loop: true, detect_fps: 5}\n")
    served = Served("--config", "cameras.yaml", "--http", "127.0.0.1:0", cwd=tmp_path, token=TOKEN)
    try:
        served.wait_for(lambda: len(served.json("/api/recordings?camera=demo")["recordings"]) >= 4, 90, "4 closed segments")
        with chromium() as browser:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{served.url}?token={TOKEN}")
            # Only cameras that record are offered.
            assert page.eval_on_selector_all("#range-camera option", "options => options.map(o => o.value)") == ["demo"]

            # Empty times: every segment, played from the first, then the next when it ends.
            page.click("#range button")
            page.wait_for_function("document.querySelectorAll('#segments li').length > 0")
            listed = page.eval_on_selector_all("#segments a", "links => links.map(a => a.pathname)")
            kept = [row["url"] for row in served.json("/api/recordings?camera=demo")["recordings"]]
            assert len(listed) >= 4 and listed == kept[:len(listed)]
            assert page.eval_on_selector("#player", "v => new URL(v.src).pathname") == listed[0]
            page.wait_for_function("document.getElementById('player').dataset.playing === '1'", timeout=20000)
            assert page.eval_on_selector("#player", "v => new URL(v.src).pathname") == listed[1]
            assert page.eval_on_selector("#player", "v => v.error === null")  # it decoded, it was no 404

            # A range: a whole second inside one segment (segments last about one second; once the
            # middle of one was cut to whole seconds and fell in the segment before) holds it only.
            rows = served.json("/api/recordings?camera=demo")["recordings"]
            chosen, second = next(((row, s) for row in rows for s in [whole_second_inside(row)] if s), (None, None))
            assert chosen, f"no segment spans a whole second: {rows}"
            page.fill("#range-start", local_input(second))
            page.fill("#range-end", local_input(second))
            page.click("#range button")
            page.wait_for_function("document.querySelectorAll('#segments li').length === 1")
            assert page.eval_on_selector_all("#segments a", "links => links.map(a => a.pathname)") == [chosen["url"]]
            assert "segment 1 of 1" in page.inner_text("#range-status")
            assert not errors, errors
    finally:
        served.kill()
