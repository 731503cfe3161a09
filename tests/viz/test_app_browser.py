"""``pst-yolo app`` as a person uses it: the server started on 127.0.0.1, the page driven in headless Chromium.

Debian's ``chromium`` through Playwright's Python package (``executable_path``: no browser download):
upload a video made from the project's synthetic set, wait for the annotated frames, move k with the
keyboard, and check the page shows boxes and the latency panel for both k. The screenshot goes to the
test's temporary folder, and also to ``$PST_YOLO_SCREENSHOTS`` when that names a folder (the one in
docs/images/ was made so). ``$PST_YOLO_APP_TEST_MODEL`` swaps the random-weights model for a trained one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import pytest

from helpers import REPO

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.slow


def _requirements() -> None:
    for module, package in (("streamlit", "streamlit (pip install 'pst-yolo[app]')"),
                            ("playwright", "playwright (pip install 'pst-yolo[app-test]')")):  # fmt: skip
        try:
            __import__(module)
        except ImportError:
            pytest.skip(f"needs the Python package {package}")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _synth_video(root: Path) -> Path:
    """A 5 FPS clip of the project's synthetic images (what the test model sees in training)."""
    from pst_yolo.data.synth import SynthSpec, generate

    data = generate(root / "synth", SynthSpec(train=0, val=12, imgsz=256, max_objects=6, min_side=0.15, seed=3))
    images = sorted((data.parent / "images" / "val").glob("*.png"))
    video = root / "shapes.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (256, 256))
    for p in images:
        writer.write(cv2.imread(str(p)))
    writer.release()
    return video


def _wait_healthy(url: str, proc: subprocess.Popen, seconds: float = 120) -> None:
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the app exited with {proc.returncode}: {proc.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the app did not answer on /_stcore/health")


@contextlib.contextmanager
def serve(tmp_path: Path, model: str, conf: str, extra_flags: tuple = ()):
    """``pst-yolo app`` on a free port of 127.0.0.1, and a Chromium page on it (a fresh --user-data-dir)."""
    from playwright.sync_api import expect, sync_playwright

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "YOLO_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "pst_yolo.cli", "app", f"port={port}", f"model={model}", "imgsz=256", f"conf={conf}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_healthy(url, proc)
        with sync_playwright() as pw:
            browser = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=[*FLAGS, *extra_flags],
                viewport={"width": 1400, "height": 1060},
            )
            try:
                page = browser.new_page()
                page.goto(url)
                expect(page.get_by_text("PST live detection demo")).to_be_visible(timeout=120_000)
                yield page
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _model(tmp_path: Path) -> tuple[str, str]:
    """(model, conf): $PST_YOLO_APP_TEST_MODEL at conf 0.1, else random weights at conf 0 (boxes on every frame)."""
    from ultralytics import YOLO

    if os.environ.get("PST_YOLO_APP_TEST_MODEL"):
        return os.environ["PST_YOLO_APP_TEST_MODEL"], "0.1"
    model = tmp_path / "pst.pt"
    YOLO("yolo11n-pst.yaml").save(model)
    return str(model), "0.0"


def test_upload_video_move_k_see_boxes_and_latency(tmp_path):
    _requirements()
    from playwright.sync_api import expect

    video = _synth_video(tmp_path)
    with serve(tmp_path, *_model(tmp_path)) as page:
        page.get_by_text("Upload a video or image").click()
        uploader = page.get_by_test_id("stFileUploader").filter(has_text="Video or image")
        uploader.locator("input[type=file]").set_input_files(str(video))
        expect(page.get_by_text("Latency per k")).to_be_visible(timeout=120_000)
        expect(page.get_by_text("end of the video")).to_be_visible(timeout=120_000)
        first = page.get_by_test_id("stImage").first.inner_text()
        assert first.startswith("k=8 (fine):"), first
        slider = page.get_by_role("slider").first  # the k slider heads the controls
        slider.focus()
        for _ in range(4):
            slider.press("ArrowLeft")
        expect(page.get_by_test_id("stImage").first).to_contain_text("k=4 (fine):", timeout=120_000)
        caption = page.get_by_test_id("stImage").first.inner_text()
        boxes = int(caption.split(":")[1].split()[0])
        assert boxes > 0, caption
        table = page.get_by_test_id("stTable").inner_text()
        assert "k=8 (fine)" in table and "k=4 (fine)" in table and "p90 ms" in table, table
        page.get_by_text("Side by side: k = 0 and this k").click()  # the same frame at k=0 and k=4, overlay on
        expect(page.get_by_test_id("stImage")).to_have_count(2, timeout=120_000)
        page.get_by_text("Attention overlay").click()
        expect(page.get_by_test_id("stImage").first).to_contain_text("k=0 (coarse only):", timeout=120_000)
        page.wait_for_timeout(3000)
        shot = tmp_path / "app.png"
        page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("PST_YOLO_SCREENSHOTS"):
        shutil.copy(shot, Path(os.environ["PST_YOLO_SCREENSHOTS"]) / "app.png")


def test_browser_camera_streams_annotated_frames(tmp_path):
    """The camera source through streamlit-webrtc, with Chromium's fake camera (a test pattern)."""
    _requirements()
    from playwright.sync_api import expect

    pytest.importorskip("streamlit_webrtc", reason="needs the Python package streamlit-webrtc (the [app] extra)")
    flags = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")
    with serve(tmp_path, *_model(tmp_path), extra_flags=flags) as page:
        page.get_by_text("Browser camera").click()
        component = page.frame_locator("iframe").first
        component.get_by_role("button", name="START").click(timeout=120_000)
        video = component.locator("video")
        deadline = time.time() + 120
        state = [0, 0, 0.0]
        while time.time() < deadline and state[2] < 2.0:  # the annotated stream comes back and plays
            page.wait_for_timeout(1000)
            state = video.evaluate("v => [v.videoWidth, v.videoHeight, v.currentTime]")
        assert state[0] > 0 and state[1] > 0 and state[2] >= 2.0, state
        corner = video.evaluate(
            "v => { const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;"
            " const g = c.getContext('2d'); g.drawImage(v, 0, 0); return Array.from(g.getImageData(3, 3, 1, 1).data); }"
        )
        assert max(corner[:3]) < 40, corner  # the HUD's dark box: frames come back annotated (the fake camera is green)
        page.get_by_role("button", name="Refresh the statistics").click()
        expect(page.get_by_test_id("stTable")).to_contain_text("k=8 (fine)", timeout=60_000)
