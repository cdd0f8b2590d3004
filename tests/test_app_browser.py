"""scripts/app.py in a real headless browser (Debian's Chromium via Selenium): upload an image, click the object,
see the mask, type a prompt, generate with a tiny model, a playable video appears.

The browser comes from ``scripts/install_browser.sh`` (apt: chromium, chromium-driver; ``make test`` runs it, and it
installs only as root or with passwordless sudo). When the browser is missing this test is skipped with that
instruction, or fails when ``FYC_REQUIRE_BROWSER=1`` (``.ci/run`` sets it, so CI always runs the browser test).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


MISSING_BROWSER = ("headless browser missing (chromium and chromedriver on PATH); to enable this test: "
                   "sudo apt-get install -y chromium chromium-driver (or sudo bash scripts/install_browser.sh)")


@pytest.fixture(scope="session")
def browser_paths() -> tuple[str, str]:
    """(chromium, chromedriver). Session scope and first in the test's arguments: pytest sets it up before the
    session's toy fixtures, so a missing browser skips before any model or app is built."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        if os.environ.get("FYC_REQUIRE_BROWSER") == "1":
            pytest.fail(f"FYC_REQUIRE_BROWSER=1: {MISSING_BROWSER}")
        pytest.skip(MISSING_BROWSER)
    return chromium, driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(toy_pipeline_dir, tmp_path):
    port = _free_port()
    log = open(tmp_path / "app.log", "w")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "scripts/app.py", "--model", str(toy_pipeline_dir), "--port", str(port),
                             "--steps", "2", "--frames", "4", "--device", "cpu"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise AssertionError("app did not start:\n" + (tmp_path / "app.log").read_text()[-3000:])
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_app_click_generate_in_browser(browser_paths, app_url, tmp_path):
    chromium, driver_path = browser_paths
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    image = np.full((32, 32, 3), 40, np.uint8)
    image[8:18, 10:20] = (220, 30, 30)  # the object: x in [10, 19], y in [8, 17]
    Image.fromarray(image).save(tmp_path / "image.png")

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    wait = WebDriverWait(driver, 60)
    try:
        driver.get(app_url)
        upload = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#input-image input[type=file]")))
        upload.send_keys(str(tmp_path / "image.png"))
        shown = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#input-image img")))
        wait.until(lambda d: shown.size["width"] > 0 and d.execute_script("return arguments[0].complete", shown))
        status = driver.find_element(By.CSS_SELECTOR, "#status textarea")
        wait.until(lambda d: "image loaded" in status.get_attribute("value"))
        # Click the centre of the object: pixel (15, 13) of the 32x32 image, wherever the browser drew it.
        box = driver.execute_script(
            "const r = arguments[0].getBoundingClientRect(); const s = Math.min(r.width / arguments[0].naturalWidth,"
            " r.height / arguments[0].naturalHeight); return [r.width, r.height, s];", shown)
        width, height, scale = box
        x = (15.5 - 16) * scale
        y = (13.5 - 16) * scale
        ActionChains(driver).move_to_element_with_offset(shown, int(x), int(y)).click().perform()
        wait.until(lambda d: "mask: 100 px" in status.get_attribute("value"))
        assert driver.find_element(By.CSS_SELECTOR, "#mask-overlay img").is_displayed()
        driver.find_element(By.CSS_SELECTOR, "#prompt textarea").send_keys("move left")
        driver.find_element(By.CSS_SELECTOR, "#generate").click()
        video = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#video video")))
        wait.until(lambda d: "video: 4 frames" in status.get_attribute("value"))
        src = video.get_attribute("src")
        assert src, "no video source"
        data = urllib.request.urlopen(src, timeout=10).read()
        assert data[4:8] == b"ftyp", "the served file is not an mp4"
        (tmp_path / "served.mp4").write_bytes(data)
        from fyc.data.video_io import read_video

        assert read_video(tmp_path / "served.mp4").shape == (4, 32, 32, 3)
    except Exception:
        driver.save_screenshot(str(tmp_path / "failure.png"))
        raise
    finally:
        driver.quit()
