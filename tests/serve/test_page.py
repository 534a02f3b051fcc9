"""The status page in a real headless Chromium: the token form, every job with its progress,
and the page following a running job to its end by itself."""

from __future__ import annotations

import io
import os

from hpcingest import sample
from tests.browser import HANG_GUARD_S, as_rgb255, assert_no_console_errors, matches
from tests.serve.conftest import Service, flat_tree, handler_text, service_environment, stop_all, write_yaml

HOSTILE = "<img src=x onerror=document.title='pwned'>"
COLOURS = {"running": "#1f6feb", "done": "#1a7f37", "failed": "#cf222e"}
#: where the README's screenshot is refreshed from, when set
SCREENSHOT_COPY = os.environ.get("HPCINGEST_README_SCREENSHOT")


def rows(driver) -> dict[str, dict]:
    return driver.execute_script("""
        const found = {};
        for (const row of document.querySelectorAll("#jobs tr")) {
            const cells = row.querySelectorAll("td");
            found[row.dataset.job] = {state: row.dataset.state, text: row.innerText,
                progress: cells[3].innerText, percent: cells[3].dataset.percent,
                links: Array.from(row.querySelectorAll("a")).map(a => a.getAttribute("href"))};
        }
        return found;""")


def wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, HANG_GUARD_S, poll_frequency=0.2).until(lambda d: condition(d), what)


def test_the_status_page_shows_every_job_and_follows_a_running_one(browser, slow_zone, tmp_path):
    zone = slow_zone
    service = Service(tmp_path, service_environment(zone, tmp_path)).start()
    try:
        small = flat_tree(tmp_path / HOSTILE, 3)
        service.curl_put("small", write_yaml(tmp_path / "a.yaml", root=str(small), target=f"{zone.home}/pg_a",
                                             profile=True))
        service.curl_put("broken", write_yaml(tmp_path / "b.yaml", root=str(small), target=f"{zone.home}/pg_b",
                                              event_handler_data=handler_text("failing.py")))
        service.wait_for("small", ("done",))
        service.wait_for("broken", ("failed",))
        big = tmp_path / "big"
        sample.generate(big, files=3000, seed=21, max_file_size=16)
        service.curl_put("large", write_yaml(tmp_path / "c.yaml", root=str(big), target=f"{zone.home}/pg_c"))

        browser.get(service.url + "/")
        assert browser.find_element("name", "token")  # no session yet: the token form, not the jobs
        assert browser.execute_script("return document.getElementById('jobs')") is None
        browser.find_element("id", "token").send_keys(service.token)
        browser.find_element("css selector", "button[type=submit]").click()
        wait(browser, lambda d: d.execute_script("return document.body.dataset.rendered === '1' && "
                                                 "document.querySelectorAll('#jobs tr').length === 3"), "the jobs")
        browser.get_log("browser")  # the token form's 401 is behind us
        wait(browser, lambda d: rows(d)["large"]["state"] == "running", "large to run")
        first = rows(browser)
        assert first["small"]["state"] == "done" and first["broken"]["state"] == "failed"
        assert first["small"]["links"] == ["job/small/failures", "job/small/profile"]
        assert first["broken"]["links"] == ["job/broken/failures"] and "3 entries failed" in first["broken"]["text"]
        assert HOSTILE in first["small"]["text"]  # shown as text, never run as markup
        assert browser.title == "hpcingest jobs" and not browser.find_elements("css selector", "#jobs img")
        shot = tmp_path / "status.png"
        browser.save_screenshot(str(shot))
        from matplotlib.image import imread

        pixels = as_rgb255(imread(io.BytesIO(shot.read_bytes()), format="png"))
        for state, colour in COLOURS.items():
            assert matches(pixels, colour).sum() > 100, state  # each state's badge (and bars) is drawn

        # the page redraws by itself: the running job's progress moves, then it ends as done
        updates = int(browser.execute_script("return document.body.dataset.updates"))
        wait(browser, lambda d: rows(d)["large"]["progress"] != first["large"]["progress"], "the progress to move")
        if SCREENSHOT_COPY:
            browser.save_screenshot(SCREENSHOT_COPY)  # the README's picture: a job on its way
        wait(browser, lambda d: rows(d)["large"]["state"] == "done", "large to finish")
        last = rows(browser)["large"]
        assert last["percent"] == "100" and "3,0" in last["progress"]
        assert int(browser.execute_script("return document.body.dataset.updates")) > updates + 1
        assert_no_console_errors(browser)

        # the links work with the session: the failure report and the timeline page
        browser.get(service.url + "/job/broken/failures")
        assert '"total": 3' in browser.find_element("tag name", "body").text
        browser.get(service.url + "/job/small/profile")
        wait(browser, lambda d: d.execute_script("return document.getElementById('timeline') !== null"),
             "the timeline page")
    finally:
        stop_all(service)
