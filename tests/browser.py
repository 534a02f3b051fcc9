"""A real headless browser for tests: Debian's Chromium driven by Selenium through its own
chromedriver (Selenium Manager never downloads anything), and what every page check needs."""

from __future__ import annotations

import importlib.util
import io
import json
import os

import numpy as np
import pytest

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
#: Only against a hung browser; nothing here is a performance limit.
HANG_GUARD_S = 900


def rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])


def matches(pixels: np.ndarray, colour: str, tolerance: int = 3) -> np.ndarray:
    return np.all(np.abs(pixels - rgb(colour)) <= tolerance, axis=-1)


def as_rgb255(image: np.ndarray) -> np.ndarray:
    """imread's floats in [0, 1] (RGB or RGBA) as integer RGB."""
    return np.rint(image[..., :3] * 255).astype(int)


def browser_problem() -> str | None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if importlib.util.find_spec("selenium") is None:
        missing.append("the selenium package")
    if missing:
        return f"headless browser test needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
    return None


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through its own chromedriver: Selenium Manager never downloads anything."""
    problem = browser_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    # "performance" carries the DevTools network events: unlike the page's resource timing,
    # they include file:// fetches
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def open_page(driver, path) -> None:
    """Load the page and check what every page must do: render, log no error, fetch nothing."""
    from selenium.webdriver.support.ui import WebDriverWait

    for log in ("browser", "performance"):
        driver.get_log(log)         # drop entries from earlier pages
    driver.get(path.as_uri())
    WebDriverWait(driver, HANG_GUARD_S).until(
        lambda d: d.execute_script("return document.body && document.body.dataset.rendered === '1'"))
    assert_no_console_errors(driver)
    assert driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)") == []
    assert requested_urls(driver) == [path.as_uri()]


def requested_urls(driver) -> list[str]:
    """Every URL the page asked for (data: URLs are not fetches)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if not url.startswith("data:"):
                urls.append(url)
    return urls


def assert_no_console_errors(driver) -> None:
    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []


def row_colour_counts(driver, n_rows: int, colours: list[str]) -> list[dict[str, int] | None]:
    """Per row band in a screenshot: how many pixels have each colour (None: row off screen)."""
    from matplotlib.image import imread

    driver.execute_script("window.scrollTo(0, 0)")
    geometry = driver.execute_script("""
        const box = document.getElementById("timeline").getBoundingClientRect(), bands = [];
        for (let i = 0; i < arguments[0]; i++) bands.push(window.hpcingestRowBand(i));
        return {left: box.left, top: box.top, width: box.width, dpr: window.devicePixelRatio, bands: bands};
    """, n_rows)
    shot = as_rgb255(imread(io.BytesIO(driver.get_screenshot_as_png()), format="png"))
    dpr = geometry["dpr"]
    x0, x1 = round(geometry["left"] * dpr), round((geometry["left"] + geometry["width"]) * dpr)
    counts: list[dict[str, int] | None] = []
    for top, bottom in geometry["bands"]:
        y0, y1 = round((geometry["top"] + top) * dpr) + 1, round((geometry["top"] + bottom) * dpr) - 1
        if y1 > shot.shape[0] or y1 <= y0:
            counts.append(None)
            continue
        band = shot[y0:y1, x0:x1]
        count = {colour: int(matches(band, colour).sum()) for colour in colours}
        counts.append(count | {"area": band.shape[0] * band.shape[1]})
    return counts
