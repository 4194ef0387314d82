"""The page in one real browser (Debian's chromium, headless, through Playwright), as a person uses
it: three cameras (two real RTSP streams, one with credentials, and a looping file that records),
each live picture seen changing, a screenshot that must not be blank, then the recordings of a time
range played one after another."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from tests.browser import chromium
from tests.conftest import write_clip
from tests.service.conftest import PASSWORD, TOKEN
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


def test_the_page_shows_every_camera_live_and_plays_a_recordings_time_range(rtsp_server, tmp_path: Path) -> None:
    north = rtsp_server("--user", "droid", "--password", PASSWORD)
    south = rtsp_server()
    write_clip(tmp_path / "demo.mp4", frames=60, size=(320, 180), fps=15, audio=None)
    (tmp_path / "cameras.yaml").write_text(
        "defaults: {detect_fps: 5}\ncameras:\n"
        f"  - {{name: north, source: '{north.url(f'droid:{PASSWORD}')}'}}\n"
        f"  - {{name: south, source: '{south.url()}'}}\n"
        "  - {name: demo, source: demo.mp4, loop: true, record: true, segment_seconds: 1}\n")
    served = Served("--config", "cameras.yaml", "--http", "127.0.0.1:0", "--reconnect-timeout", "60",
                    cwd=tmp_path, token=TOKEN)
    try:
        served.wait_for(lambda: min(f["frames_processed"] for f in served.stats().values()) >= 3, 90, "pictures")
        served.wait_for(lambda: len(served.json("/api/recordings?camera=demo")["recordings"]) >= 4, 90, "4 closed segments")
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{served.url}?token={TOKEN}")

            # Live: each camera's picture changes; the page with its figures is not blank.
            page.wait_for_function("document.querySelectorAll('img[data-camera]').length === 3")
            assert page.evaluate(PICTURES_CHANGE) == ["demo", "north", "south"]
            page.wait_for_timeout(1500)  # a stats refresh, for the picture
            screenshot = cv2.imdecode(np.frombuffer(page.screenshot(), np.uint8), cv2.IMREAD_COLOR)
            assert screenshot.shape[1] == 1280
            # Not blank: the live pictures and the figures make many distinct colours and strong contrast.
            assert screenshot.std() > 20 and len(np.unique(screenshot.reshape(-1, 3), axis=0)) > 500

            # Recordings: only cameras that record are offered.
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
