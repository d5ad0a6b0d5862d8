"""The chat page of `rag serve` in headless Chromium (Selenium, the system chromium and chromedriver):
enter the API key, switch the retriever, ask, watch the answer stream in, see the sources with their
pages, give a thumbs up, and find the label in the evaluation database. No request leaves 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from urllib.parse import urlparse

import pytest
from serve_process import free_port, handbook_storage, start_server, stop_server
from test_dashboard import ARTIFACTS, CHROME_FLAGS, browser_paths, requested_urls

from rag import Config
from rag.evaluation.labels import LabelStore

KEY = "page-key-0123456789abcdef"
QUESTION = "How long must passwords be?"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    storage = handbook_storage(tmp_path_factory.mktemp("page"))
    process, url = start_server(storage, free_port(), {"RAG_API_KEYS": KEY, "RAG_MAX_NEW_TOKENS": "64"})
    yield storage, url
    assert stop_server(process) == 0


@pytest.fixture(scope="module")
def chromium():
    paths = browser_paths()
    if paths is None:
        pytest.skip("needs chromium and chromedriver: scripts/setup.sh --test (Debian chromium, chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")
    profile = tempfile.mkdtemp(prefix="rag-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=paths[1]), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_until(condition, what: str, timeout_s: float = 120, every_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


def test_ask_watch_the_stream_see_sources_and_give_feedback(served, chromium):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    storage, url = served
    driver = chromium
    driver.get(url + "/")
    status = driver.find_element("id", "status")
    wait_until(lambda: "API key" in status.text, "the page to ask for the API key")
    driver.find_element("id", "api-key").send_keys(KEY, Keys.TAB)  # change: the models load with the key
    retriever = Select(driver.find_element("id", "retriever"))
    wait_until(lambda: len(retriever.options) == 3, "the retrievers in the menu")
    assert [o.text for o in retriever.options] == ["basic", "sentence_window", "auto_merging"]
    retriever.select_by_visible_text("sentence_window")

    driver.find_element("id", "question").send_keys(QUESTION)
    driver.find_element("id", "ask").click()
    lengths = []  # the answer's length as the page shows it, while it streams

    def sources_shown():
        text = driver.execute_script("const a = document.querySelector('.turn .answer'); return a ? a.textContent : '';")
        if text and (not lengths or lengths[-1] != len(text)):
            lengths.append(len(text))
        return driver.find_elements("css selector", ".turn .sources li")

    sources = wait_until(sources_shown, "the sources under the answer")
    assert len(lengths) >= 2, f"the answer did not arrive in pieces: {lengths}"  # streamed, not at once
    answer = driver.find_element("css selector", ".turn .answer").text
    assert answer.strip() and "Sources:" not in answer  # the page lists the sources itself
    assert sources[0].text.startswith("handbook.pdf p") and "score" in sources[0].text
    sources[0].find_element("tag name", "summary").click()  # the source's own text unfolds
    assert "Passwords" in sources[0].find_element("css selector", ".text").text or "sick days" in sources[0].text

    driver.find_element("css selector", ".turn .feedback-up").click()
    feedback = driver.find_element("css selector", ".turn .feedback-status")
    wait_until(lambda: feedback.text == "Thanks: recorded.", "the feedback to be recorded", timeout_s=30)
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "serve-chat.png"))

    labels = LabelStore(Config(storage_dir=storage).resolved_database_url).labels(metric="answer")
    assert len(labels) == 1
    label = labels[0]
    assert (label.value, label.question, label.source) == (1, QUESTION, "feedback")
    assert label.retriever.startswith("sentence_window[") and label.answer.strip()[:40] in answer
    assert label.contexts and label.annotator.startswith("key:")

    hosts = {urlparse(u).hostname for u in requested_urls(driver) if u.startswith(("http", "ws"))}
    assert hosts == {"127.0.0.1"}, hosts


def test_empty_question_is_refused_on_the_page(served, chromium):
    chromium.find_element("id", "question").clear()
    turns = len(chromium.find_elements("css selector", ".turn"))
    chromium.find_element("id", "ask").click()
    assert chromium.find_element("id", "status").text == "Type a question first."
    assert len(chromium.find_elements("css selector", ".turn")) == turns
