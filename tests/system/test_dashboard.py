"""The TruLens dashboard as a user sees it: a database with two app versions, the dashboard
started by ``rag.evaluation.trulens.dashboard.start_dashboard`` on 127.0.0.1, the page rendered in
headless Chromium (Selenium), both versions visible, a person's labels of one version shown beside
the judges' scores, a screenshot kept, and no request leaving the machine."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "eval_questions" / "sample.jsonl"
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOT = ARTIFACTS / "dashboard.png"
RETRIEVERS = ["basic", "sentence_window:window_size=1"]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1600,1400"]
LOCAL_HOSTS = {"127.0.0.1"}
RENDER_TIMEOUT_S = 240  # first render imports TruLens in the dashboard process: slow on 2 shared cores
LABELS = {"answer": 0.5, "groundedness": 1, "context_relevance": 0}  # partly right, grounded, context irrelevant
SHOWN_AS = {"label: correctness": 0.5, "label: groundedness": 1.0, "label: context relevance": 0.0}


def browser_paths() -> tuple[str, str] | None:
    chromium = CHROMIUM if os.access(CHROMIUM, os.X_OK) else shutil.which("chromium")
    driver = CHROMEDRIVER if os.access(CHROMEDRIVER, os.X_OK) else shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def evaluated(sample_app, tmp_path_factory):
    """One question through two retriever versions, recorded in a fresh SQLite database."""
    from rag import RAG
    from rag.evaluation.questions import load_questions

    folder = tmp_path_factory.mktemp("dashboard")
    config = sample_app.config.replace(max_new_tokens=32, database_url=f"sqlite:///{folder / 'trulens.sqlite'}")
    app = RAG(config)
    results = app.evaluate(load_questions(SAMPLE)[:1], retrievers=RETRIEVERS, judge="lexical", progress=False,
                           output_dir=folder / "results")
    rows = results.rows
    assert len(rows) == 2 and rows["error"].isna().all(), rows[["version", "error"]]
    assert rows[["context_relevance", "groundedness", "answer_relevance"]].notna().all().all()
    # The first version's answer labelled through the API (not synced here: the dashboard's start does it).
    from contextlib import closing

    from rag.evaluation.labels import Label

    labelled = rows.iloc[0]
    with closing(app.labels()) as store:
        for metric, value in LABELS.items():
            store.add(Label(metric=metric, value=value, question=labelled["question"], answer=labelled["answer"],
                            record_id=labelled["record_id"], retriever=labelled["version"], source="rag label",
                            annotator="tester"))
    return app, results, folder


@pytest.fixture(scope="module")
def dashboard(evaluated):
    """The dashboard process serving the evaluation database: ``(url, process, log_path)``."""
    from rag.evaluation.trulens.dashboard import start_dashboard, stop

    app, _, folder = evaluated
    log_path = folder / "dashboard.log"
    cwd = os.getcwd()
    os.chdir(folder)  # the dashboard process inherits it: TruLens' implicit default.sqlite would land here
    try:
        url, process = start_dashboard(app.config, timeout_s=RENDER_TIMEOUT_S, log_path=log_path)
    finally:
        os.chdir(cwd)
    try:
        yield url, process, log_path
    finally:
        stop(process)
        assert process.poll() is not None
        assert not (folder / "default.sqlite").exists()


@pytest.fixture(scope="module")
def browser():
    paths = browser_paths()
    if paths is None:
        pytest.skip(f"headless browser test needs chromium and chromedriver ({CHROMIUM}, {CHROMEDRIVER}); "
                    "install them with scripts/setup.sh --test (Debian packages chromium, chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager stays silent (and is not used here)
    profile = tempfile.mkdtemp(prefix="rag-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=paths[1]), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# ---------------------------------------------------------------- helpers

def page_text(driver) -> str:
    from selenium.common.exceptions import WebDriverException

    try:
        return driver.find_element("tag name", "body").text
    except WebDriverException:
        return ""


def wait_for(driver, predicate, what: str, log_path: Path, timeout_s: float = RENDER_TIMEOUT_S) -> str:
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = page_text(driver)
        if predicate(text):
            return text
        time.sleep(1)
    log = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else "(no log)"
    pytest.fail(f"Timed out after {timeout_s:.0f} s waiting for {what}.\nPage text:\n{text[:3000]}\n"
                f"Dashboard log:\n{log}")


def wait_for_grid(driver, versions: list[str], log_path: Path, timeout_s: float = 60) -> str:
    """The text of the leaderboard grid (``st.dataframe``) once it holds every version."""
    script = ("const grid = document.querySelector('[data-testid=\"stDataFrame\"]');"
              "return grid && grid.querySelector('canvas') ? grid.textContent : '';")
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = driver.execute_script(script) or ""
        if all(v in text for v in versions):
            grid = driver.find_element("css selector", "[data-testid='stDataFrame']")
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", grid)
            return text
        time.sleep(1)
    log = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else "(no log)"
    pytest.fail(f"The App Versions grid did not show {versions} within {timeout_s:.0f} s; grid text: {text[:2000]!r}\n"
                f"Dashboard log:\n{log}")


def click_tab(driver, label: str) -> None:
    tabs = [t for t in driver.find_elements("css selector", "[role='tab']") if t.text.strip() == label]
    assert tabs, f"no tab {label!r}; tabs: {[t.text for t in driver.find_elements('css selector', '[role=tab]')]}"
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", tabs[0])
    tabs[0].click()


def requested_urls(driver) -> list[str]:
    """Every URL the page asked for (HTTP, WebSocket), from Chrome's DevTools performance log."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(params["request"]["url"])
        elif message.get("method") == "Network.webSocketCreated":
            urls.append(params["url"])
    return urls


def png_info(path: Path) -> tuple[int, int, int]:
    """(width, height, number of distinct colours in a 400x400 sample) of a PNG."""
    from PIL import Image  # comes with matplotlib

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    with Image.open(path) as image:
        width, height = image.size
        colours = image.convert("RGB").resize((400, 400)).getcolors(maxcolors=1 << 20)
    return width, height, len(colours or [])


# ---------------------------------------------------------------- tests

def test_dashboard_process_does_not_phone_home(dashboard):
    from rag.evaluation.trulens.dashboard import NO_PHONE_HOME_ENV

    url, process, _ = dashboard
    assert urlparse(url).hostname == "127.0.0.1"
    assert NO_PHONE_HOME_ENV["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] == "false"
    environ = Path(f"/proc/{process.pid}/environ")
    if environ.exists():  # Linux: the environment the process really got
        env = dict(item.split("=", 1) for item in environ.read_bytes().decode(errors="replace").split("\0")
                   if "=" in item)
        assert env.get("STREAMLIT_BROWSER_GATHER_USAGE_STATS") == "false"
        assert env.get("STREAMLIT_SERVER_HEADLESS") == "true"
    args = process.args
    assert "--browser.gatherUsageStats=false" in args and "--server.address=127.0.0.1" in args


def test_dashboard_listens_on_loopback_only(dashboard):
    url, _, _ = dashboard
    port = urlparse(url).port
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            pytest.skip("no /proc/net/tcp to inspect listening sockets")
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, state = fields[1], fields[3]
            host_hex, port_hex = address.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # LISTEN
                listening.append(host_hex)
    assert listening == ["0100007F"], f"port {port} is listened on at {listening} (hex), not only 127.0.0.1"


@pytest.fixture(scope="module")
def rendered(evaluated, dashboard, browser):
    """The leaderboard page loaded in Chromium, its "List View" tab open, screenshots taken.

    Returns the page text, the versions, and every URL the page requested.
    """
    _, results, _ = evaluated
    url, process, log_path = dashboard
    versions = list(results.rows["version"])
    browser.get(url)
    text = wait_for(browser, lambda t: "Leaderboard" in t and "App Versions" in t and "List View" in t,
                    "the leaderboard page to render", log_path)
    assert "No app versions found" not in text and "No records" not in text, text
    # The "App Versions" tab is a grid drawn on a canvas: its visible text is not in the page
    # text, but the grid keeps an accessible copy of its cells in the DOM.
    grid_text = wait_for_grid(browser, versions, log_path)
    time.sleep(1)  # let the canvas paint
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard-app-versions.png"))
    # The "List View" tab shows each version as a heading with its records and scores.
    click_tab(browser, "List View")
    text = wait_for(browser, lambda t: all(v in t for v in versions), f"both versions {versions}", log_path)
    headings = [h for h in browser.find_elements("css selector", "h4") if h.text.strip() in versions]
    if headings:
        browser.execute_script("arguments[0].scrollIntoView({block: 'start'});", headings[0])
    time.sleep(1)
    assert browser.save_screenshot(str(SCREENSHOT))
    assert process.poll() is None, "the dashboard died while being viewed"
    return {"text": text, "grid_text": grid_text, "versions": versions, "retrievers": list(results.rows["retriever"]),
            "headings": [h.text.strip() for h in headings], "urls": requested_urls(browser), "url": url}


def test_dashboard_shows_both_versions(rendered):
    text, versions = rendered["text"], rendered["versions"]
    assert len(set(versions)) == 2
    for version, retriever in zip(versions, rendered["retrievers"]):
        assert version in text and retriever in text
    assert sorted(rendered["headings"]) == sorted(versions)  # one heading per version, visible
    assert all(v in rendered["grid_text"] for v in versions)  # and one row each in the "App Versions" grid
    for label in ("Records", "Context Relevance", "Groundedness", "Answer Relevance"):
        assert text.count(label) >= 2, label


def test_dashboard_shows_the_labels_beside_the_judges_scores(rendered, dashboard, browser):
    """List View: each version's metric cards; the labelled version has one card per label, among the
    judges' cards, with the label's value; the other version has none."""
    text = wait_for(browser, lambda t: all(name in t for name in SHOWN_AS), "the labels' cards", dashboard[2],
                    timeout_s=60)
    for name, value in SHOWN_AS.items():
        shown = re.findall(rf"^{re.escape(name)}\n(-?[0-9.]+)$", text, flags=re.M)
        assert [float(v) for v in shown] == [value], (name, text[:3000])  # once: only the labelled version
    labelled, other = rendered["versions"]
    heading_y = {h.text.strip(): h.location["y"] for h in browser.find_elements("css selector", "h4")
                 if h.text.strip() in rendered["versions"]}

    def version_above(y: float) -> str:
        return max((v for v in heading_y if heading_y[v] < y), key=lambda v: heading_y[v])

    for name in (*SHOWN_AS, "Groundedness"):
        # Streamlit keeps hidden copies of some texts (tooltips, zero-size): only what is on screen counts.
        cards = [c for c in browser.find_elements("xpath", f"//*[normalize-space(text())='{name}']")
                 if c.is_displayed() and c.size["height"] > 0]
        assert cards, name
        owners = [version_above(card.location["y"]) for card in cards]
        assert labelled in owners and (name == "Groundedness") == (other in owners), (name, owners)


def test_dashboard_screenshot_is_a_real_picture(rendered):
    width, height, colours = png_info(SCREENSHOT)
    assert SCREENSHOT.stat().st_size > 20_000, SCREENSHOT.stat().st_size
    assert width >= 800 and height >= 600, (width, height)
    assert colours > 50, f"the screenshot looks blank ({colours} colours)"


def test_dashboard_page_requests_stay_on_this_machine(rendered):
    urls = rendered["urls"]
    assert any(u.startswith(rendered["url"]) for u in urls), urls[:20]
    foreign = sorted({u for u in urls if urlparse(u).scheme in ("http", "https", "ws", "wss")
                      and urlparse(u).hostname not in LOCAL_HOSTS})
    assert not foreign, f"the dashboard page made requests off this machine: {foreign[:20]}"
