"""Renderings of a timeline: the usage numbers, the PNG's pixels, and the HTML page in a real
headless Chromium (no console errors, no network, each rank's colours in its own row)."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from hpcingest.profile.render import (OTHER, RankUsage, format_usage_table, kind_color, render_html, render_png,
                                      usage_json, usage_table)
from hpcingest.profile.timeline import SEGMENT_DTYPE, RankTimeline, Timeline
from tests.browser import as_rgb255 as _as_rgb255, matches as _matches
from tests.browser import assert_no_console_errors, open_page, row_colour_counts
from tests.launchers import hpcingest_argv, run
from tests.profile.test_timeline import T0, make_rank

#: Rank i spends most of its time in DISTINCT[i % 4] and the rest idle or unrecorded.
DISTINCT = ["list", "stat", "irods:DATA_OBJ_PUT", "sink"]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
#: Only against a hung browser; nothing here is a performance limit.
HANG_GUARD_S = 900


def four_ranks() -> Timeline:
    """Four staggered ranks, segments wider than a pixel, kind ids numbered differently per rank."""
    ranks = []
    for i, kind in enumerate(DISTINCT):
        kinds = [kind, "idle"] if i % 2 else ["idle", "steal", kind]
        pieces, t = [], 0.5 * i
        while t < 17:
            pieces += [(t, t + 0.8, kind), (t + 0.8, t + 1.0, "idle")]   # then 0.1 s of "other"
            t += 1.1
        if i == 0:
            kinds.append("mystery")                                      # a kind no palette knows
            pieces.append((t, t + 1.0, "mystery"))
        ranks.append(make_rank(i, kinds, pieces, started=T0 + 0.5 * i, ended=T0 + 20 - 0.3 * i, host=f"host-{i}"))
    return Timeline.from_ranks("job-four", 2, ranks)


def large(n_ranks: int = 64, n_segments: int = 20_000, wall: float = 100.0) -> Timeline:
    """Many sub-pixel segments: 3/4 of them the rank's distinctive kind, the rest idle, 10% gaps."""
    rng = np.random.default_rng(7)
    ranks = []
    for i in range(n_ranks):
        edges = np.concatenate(([0.0], np.cumsum(rng.uniform(0.2, 1.0, n_segments))))
        edges *= (wall - 1) / edges[-1]
        segments = np.empty(n_segments, dtype=SEGMENT_DTYPE)
        segments["start"] = T0 + edges[:-1]
        segments["end"] = T0 + edges[:-1] + 0.9 * np.diff(edges)
        segments["kind"] = rng.random(n_segments) < 0.25
        ranks.append(RankTimeline(rank=i, host=f"n{i // 16:02d}", kinds=[DISTINCT[i % 4], "idle"],
                                  segments=segments, started=T0, ended=T0 + wall))
    return Timeline.from_ranks("job-large", 1, ranks)


# --- usage ------------------------------------------------------------------------------------


@pytest.fixture
def two_ranks() -> Timeline:
    return Timeline.from_ranks("job", 1, [
        make_rank(0, ["idle", "list", "irods:DATA_OBJ_PUT", "steal"],
                  [(0, 2, "idle"), (2, 3, "list"), (3, 6, "irods:DATA_OBJ_PUT"), (7, 8, "steal")],
                  started=T0, ended=T0 + 10),
        # segments sticking out of [started, ended] count only inside it
        make_rank(1, ["sink", "idle"], [(0.5, 2, "sink"), (2, 3, "idle"), (3, 6, "sink")],
                  started=T0 + 1, ended=T0 + 5),
    ])


def test_usage_table(two_ranks):
    first, second = usage_table(two_ranks)
    assert (first.rank, first.host, second.rank) == (0, "node0", 1)
    assert first.wall_s == pytest.approx(10)
    assert first.seconds_by_kind == pytest.approx(
        {"idle": 2, "steal": 1, "list": 1, "irods:DATA_OBJ_PUT": 3, OTHER: 3})
    assert first.idle_fraction == pytest.approx(0.3)
    assert first.busy_fraction == pytest.approx(0.7)
    assert second.wall_s == pytest.approx(4)
    assert second.seconds_by_kind == pytest.approx({"idle": 1, "sink": 3, OTHER: 0})
    assert (second.busy_fraction, second.idle_fraction) == pytest.approx((0.75, 0.25))
    for row in (first, second):
        assert sum(row.seconds_by_kind.values()) == pytest.approx(row.wall_s)


def test_usage_of_an_empty_recording():
    (row,) = usage_table(Timeline.from_ranks("job", 1, [make_rank(0, ["idle"], [], ended=T0)]))
    assert (row.wall_s, row.busy_fraction, row.idle_fraction, row.seconds_by_kind) == (0, 0, 0, {OTHER: 0})


def test_format_usage_table(two_ranks):
    text = format_usage_table(usage_table(two_ranks))
    lines = text.splitlines()
    assert len(lines) == 6                                   # header, rule, 2 ranks, rule, TOTAL
    assert lines[0].split()[:7] == ["rank", "host", "wall", "s", "busy", "%", "idle"]
    assert len({len(line) for line in lines}) == 1           # aligned
    total = lines[-1].split()
    assert total[:5] == ["TOTAL", "2", "ranks", "14.00", f"{100 * 10 / 14:.1f}"]
    assert total[5] == f"{100 * 4 / 14:.1f}"
    # largest kinds get columns, the rest one column
    narrow = format_usage_table(usage_table(two_ranks), max_kinds=2).splitlines()
    # idle, sink, irods:DATA_OBJ_PUT and other tie at 3 s: engine kinds first
    assert narrow[0].split()[-7:] == ["idle", "s", "sink", "s", "rest", "(4)", "s"]
    assert narrow[-1].split()[-3:] == ["3.00", "3.00", "8.00"]     # steal 1 + list 1 + PUT 3 + other 3


def test_usage_json(two_ranks):
    data = json.loads(json.dumps(usage_json(usage_table(two_ranks))))
    assert [row["rank"] for row in data["ranks"]] == [0, 1]
    assert data["total"]["rank"] is None
    assert data["total"]["wall_s"] == pytest.approx(14)
    assert data["total"]["seconds_by_kind"] == pytest.approx(
        {"idle": 3, "steal": 1, "list": 1, "sink": 3, "irods:DATA_OBJ_PUT": 3, OTHER: 3})
    assert data["total"]["idle_fraction"] == pytest.approx(4 / 14)
    assert data["kinds"][:3] == ["idle", "steal", "list"] and data["kinds"][-1] == OTHER
    assert RankUsage(**data["ranks"][0]).busy_fraction == pytest.approx(0.7)


# --- colours ----------------------------------------------------------------------------------


# --- PNG --------------------------------------------------------------------------------------


def _bar_tops(image: np.ndarray, colour: str) -> np.ndarray:
    """Top pixel row of each bar of colour (long stretches of it, unlike a legend swatch)."""
    rows = np.flatnonzero(_matches(image, colour).sum(axis=1) > 100)
    return rows[np.concatenate(([True], np.diff(rows) > 1))] if len(rows) else rows


def _check_png(path, timeline: Timeline) -> np.ndarray:
    """One bar per rank, top to bottom in rank order, each in its rank's distinctive colour."""
    from matplotlib.image import imread

    image = _as_rgb255(imread(path))
    assert image.shape[1] == 1600
    bars = sorted((top, i) for i, kind in enumerate(DISTINCT) for top in _bar_tops(image, kind_color(kind)))
    assert [i for _, i in bars] == [rank % 4 for rank in range(len(timeline.ranks))]
    return image


def test_png(tmp_path):
    timeline = four_ranks()
    render_png(timeline, tmp_path / "four.png")
    image = _check_png(tmp_path / "four.png", timeline)
    assert 200 <= image.shape[0] <= 800
    assert _matches(image, kind_color(OTHER)).sum() > 1000
    assert _matches(image, kind_color("idle")).sum() > 1000
    assert _matches(image, kind_color("mystery")).sum() > 100


def test_png_of_many_ranks(tmp_path):
    from matplotlib.image import imread

    render_png(four_ranks(), tmp_path / "four.png")
    timeline = large()
    render_png(timeline, tmp_path / "large.png")
    image = _check_png(tmp_path / "large.png", timeline)
    assert imread(tmp_path / "four.png").shape[0] < image.shape[0] <= 4500


# --- HTML: static checks ----------------------------------------------------------------------


def test_html_is_self_contained(tmp_path):
    render_html(four_ranks(), tmp_path / "four.html")
    page = (tmp_path / "four.html").read_text(encoding="utf-8")
    assert not re.search(r"https?:|<script[^>]+src=|<link[^>]+stylesheet|@import|url\(", page)
    assert 'id="timeline"' in page and 'id="aggregated"' not in page
    assert "job-four" in page and "rank 0" not in page       # row labels come from the data, drawn by the script
    assert page.count("<tr") == 1 + 4 + 1                     # usage table: header, ranks, TOTAL


def test_html_escapes_names(tmp_path):
    rank = make_rank(0, ["</script><b>x"], [(0, 1, "</script><b>x")], host="<img src=x onerror=alert(1)>")
    render_html(Timeline.from_ranks("job@JS@", 1, [rank]), tmp_path / "x.html")
    page = (tmp_path / "x.html").read_text(encoding="utf-8")
    assert "<img" not in page and "</script><b>" not in page
    assert "job@JS@" in page


def test_html_says_when_it_aggregates(tmp_path):
    render_html(large(n_ranks=4, n_segments=5_000), tmp_path / "agg.html", max_segments=10_000)
    page = (tmp_path / "agg.html").read_text(encoding="utf-8")
    assert 'id="aggregated"' in page and "20,000 segments" in page and "2,500 time bins" in page


# --- HTML in a real browser -------------------------------------------------------------------


def _check_rows(driver, timeline: Timeline, minimum_visible: int) -> None:
    """Row i shows plenty of its distinctive colour and none of the other ranks' colours."""
    assert driver.execute_script("return document.body.dataset.rows") == str(len(timeline.ranks))
    colours = [kind_color(kind) for kind in DISTINCT]
    counts = row_colour_counts(driver, len(timeline.ranks), colours)
    visible = [(i, count) for i, count in enumerate(counts) if count is not None]
    assert len(visible) >= minimum_visible
    for i, count in visible:
        own = colours[i % 4]
        assert count[own] >= 0.3 * count["area"], f"row {i}: {count}"
        assert all(count[colour] == 0 for colour in colours if colour != own), f"row {i}: {count}"


def test_html_in_browser(browser, tmp_path):
    timeline = four_ranks()
    render_html(timeline, tmp_path / "four.html")
    open_page(browser, tmp_path / "four.html")
    _check_rows(browser, timeline, minimum_visible=4)


def test_html_interaction(browser, tmp_path):
    """Wheel zoom, hover tooltip, drag pan and double-click reset work and log no error."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By

    render_html(four_ranks(), tmp_path / "four.html")
    open_page(browser, tmp_path / "four.html")
    canvas = browser.find_element(By.ID, "timeline")
    view = browser.find_element(By.ID, "view-range")
    full = view.text
    band = browser.execute_script("return window.hpcingestRowBand(0)")
    centre_y = canvas.size["height"] / 2
    row0 = round((band[0] + band[1]) / 2 - centre_y)      # offsets are from the canvas centre
    ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(canvas, 100, row0), 0, -600).perform()
    zoomed = browser.execute_script("return new Promise(r => requestAnimationFrame(() => r(arguments[0].textContent)))",
                                    view)
    assert zoomed != full
    ActionChains(browser).move_to_element_with_offset(canvas, 100, row0).perform()
    tooltip = browser.find_element(By.ID, "tooltip")
    assert tooltip.is_displayed() and tooltip.text.startswith("rank 0 (host-0)")
    ActionChains(browser).click_and_hold().move_by_offset(-200, 0).release().perform()
    panned = browser.execute_script("return new Promise(r => requestAnimationFrame(() => r(arguments[0].textContent)))",
                                    view)
    assert panned not in (zoomed, full)
    ActionChains(browser).double_click(canvas).perform()
    reset = browser.execute_script("return new Promise(r => requestAnimationFrame(() => r(arguments[0].textContent)))",
                                   view)
    assert reset == full
    assert_no_console_errors(browser)


@pytest.mark.parametrize("max_segments", [None, 200_000], ids=["raw", "aggregated"])
def test_html_in_browser_large(browser, tmp_path, max_segments):
    timeline = large()
    path = tmp_path / "large.html"
    if max_segments is None:
        render_html(timeline, path)
    else:
        render_html(timeline, path, max_segments=max_segments)
    assert ('id="aggregated"' in path.read_text(encoding="utf-8")) == (max_segments is not None)
    open_page(browser, path)
    _check_rows(browser, timeline, minimum_visible=20)


# --- `hpcingest profile`: where the pictures go --------------------------------------------------


@pytest.fixture
def profiled_job(tmp_path):
    """A job directory with a recorded pass 1 (two ranks), as `start --profile` leaves it."""
    from hpcingest.jobdir import JobDirectory, JobRecord
    from hpcingest.profile.timeline import write_rank

    jobs = tmp_path / "jobs"
    job = JobDirectory(str(jobs), "j")
    job.create()
    job.save(JobRecord(job_name="j", source="/src", target="/zone/home/c", options={}, pass_number=1))
    for rank in (make_rank(0, ["list", "idle"], [(0.0, 1.0, "list")]), make_rank(1, ["idle"], [(0.0, 2.0, "idle")])):
        write_rank(job.profile_dir(1), "j", 1, rank)
    return str(jobs)


def draw(jobs: str, *args: str):
    return run(None, hpcingest_argv("profile", "j", "--job_dir", jobs, *args))


def test_profile_never_writes_through_a_link_where_its_pictures_go(profiled_job, tmp_path):
    """A link planted under the page's name (``--output /tmp``, a shared directory) had its
    target overwritten by the page, as root; the link is refused and left, its target untouched."""
    out, precious = tmp_path / "out", tmp_path / "precious.txt"
    out.mkdir()
    precious.write_bytes(b"keep me")
    for name in ("profile-j-pass1.html", "profile-j-pass1.png"):
        os.symlink(precious, out / name)
        result = draw(profiled_job, "--output", str(out))
        stderr = result.stderr.decode()
        assert result.returncode == 2 and "Traceback" not in stderr, stderr
        assert stderr.splitlines() == [f"hpcingest profile: error: --output: '{out / name}' exists and is not a "
                                       "regular file (a link); it is left as it is: give the name of a new or "
                                       "regular file"]
        assert precious.read_bytes() == b"keep me" and os.readlink(out / name) == str(precious)
        os.unlink(out / name)
    assert os.listdir(out) == []


def test_profile_replaces_its_own_pictures_and_leaves_nothing_else(profiled_job, tmp_path):
    out = tmp_path / "out"
    for _ in range(2):  # the second run replaces the first run's files
        result = draw(profiled_job, "--output", str(out))
        assert result.returncode == 0, result.stderr.decode(errors="replace")
    assert sorted(os.listdir(out)) == ["profile-j-pass1.html", "profile-j-pass1.png"]  # no temporary file left
    assert (out / "profile-j-pass1.html").read_text().startswith("<!DOCTYPE html>")


def test_profile_output_that_is_a_file_is_one_error(profiled_job, tmp_path):
    """``--output FILE`` was a FileExistsError traceback from os.makedirs."""
    a_file = tmp_path / "file"
    a_file.write_bytes(b"mine")
    result = draw(profiled_job, "--output", str(a_file))
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr, stderr
    assert stderr.splitlines() == [f"hpcingest profile: error: --output '{a_file}' exists and is not a directory: "
                                   "give the directory the HTML and PNG go to"]
    assert a_file.read_bytes() == b"mine"


def test_profile_output_that_cannot_be_made_is_one_error(profiled_job):
    """A --output directory that cannot be made: the error line used to be formatted by the
    wrong `describe` (the job's, not the OSError's) and raised instead."""
    result = draw(profiled_job, "--output", "/proc/hpcingest-no-such-place/out")
    stderr = result.stderr.decode()
    assert result.returncode == 2 and "Traceback" not in stderr, stderr
    assert stderr.startswith("hpcingest profile: error: --output: '/proc/hpcingest-no-such-place")
