"""The dashboard (API.md "The dashboard"): ui/ as runq serves it at /ui/, in a real
headless Chromium against the real binary. One browser for the module, one server per
test. Every wait is on something the page shows; every test ends by checking that the
browser's console holds no error but the ones the test expects, word for word."""
import os
import re
import shutil
import signal
import struct

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from browser import HEIGHT, WIDTH, Page, start_chrome
from conftest import get_status, submit, wait_status, wait_until

RUNS = "/api/v1/runs"
# The page polls every second, so a change shows within 2 s; the tests allow more, for a
# CI machine running other suites beside the browser (a page that never updates still fails).
LIVE = 5


def failed_to_load(url, status, reason):
    """Chromium's console line for a fetch answered with an HTTP error."""
    return (f"{url} - Failed to load resource: the server responded with a status of "
            f"{status} ({reason})")


@pytest.fixture(scope="module")
def driver():
    d = start_chrome()
    yield d
    d.quit()


@pytest.fixture
def page_for(driver, make_server):
    """page_for(server) -> a Page on that server's dashboard. At the end (before the
    servers stop: this fixture depends on make_server): no unexpected console errors, the
    key gone from sessionStorage, the browser back to its size."""
    pages = []

    def make(server):
        p = Page(driver, server)
        pages.append(p)
        return p

    yield make
    errors = [e for p in pages for e in p.console_errors()]
    if driver.current_url.startswith("http"):
        driver.execute_script("sessionStorage.clear()")
    driver.get("about:blank")
    driver.set_window_size(WIDTH, HEIGHT)
    assert not errors, f"console errors: {errors}"


@pytest.fixture
def page(page_for, server):
    return page_for(server)


def job_link(page, job_id):
    return page.row(job_id).find_element(By.TAG_NAME, "a")


def field(page, label):
    """The text of the job view's field `label` (its <dd>)."""
    return page.d.find_element(
        By.XPATH, f"//dl[@id='job-fields']//dt[normalize-space()='{label}']/following-sibling::dd"
    ).text


def counts(page):
    """The page's counts: {'queued': 0, ..., 'total': N}."""
    out = {}
    for li in page.d.find_elements(By.CSS_SELECTOR, "#counts li"):
        name, _, n = li.text.rpartition(" ")
        out[name] = int(n) if n.isdigit() else None
    return out


def result_text(page):
    # textContent: the empty <pre> shows a CSS placeholder that is not its text.
    return page.d.find_element(By.ID, "job-result").get_attribute("textContent")


def requests_after(page, start, pred):
    """The requests the page made after the first one (from index `start`) matching pred."""
    reqs = page.drain().requests[start:]
    first = next(i for i, r in enumerate(reqs) if pred(r))
    return reqs[first + 1:]


# 1 ----------------------------------------------------------------------------------------
def test_list_shows_jobs_newest_first_and_updates_live(page, client):
    ids = [submit(client, f"job {i}")["job_id"] for i in range(3)]
    failing = submit(client, "bad", config={"fail_with": "boom"})["job_id"]
    for job_id in ids + [failing]:
        wait_status(client, job_id)
    page.open()
    expected = [j["job_id"] for j in client.get(RUNS).json()["jobs"]]
    assert expected == [failing] + ids[::-1]
    page.wait(lambda: page.list_ids() == expected, what="the jobs, newest first")
    assert [page.row_status(j) for j in expected] == ["failed"] + ["succeeded"] * 3
    assert [page.row(j).find_element(By.CSS_SELECTOR, "td.what").text
            for j in expected] == ["bad", "job 2", "job 1", "job 0"]  # the prompts
    link = job_link(page, ids[0])
    assert link.accessible_name == ids[0]
    assert link.get_attribute("href").endswith(f"/ui/#/runs/{ids[0]}")
    assert not link.get_attribute("target")
    page.wait(lambda: counts(page) == {"queued": 0, "running": 0, "succeeded": 3, "failed": 1,
                                       "cancelled": 0, "total": 4}, what="the counts")

    # Submitted behind the page's back: it appears, running, then succeeds, no reload.
    page.js("window.notReloaded = true")
    late = submit(client, "late", config={"sleep_seconds": 8})["job_id"]
    page.wait(lambda: page.list_ids() == [late] + expected, timeout=LIVE, what="the new job on top")
    assert page.row_status(late) in ("queued", "running")
    page.wait(lambda: page.row_status(late) == "running", timeout=LIVE, what="running")
    assert get_status(client, late)["status"] == "running"
    wait_status(client, late, "succeeded")
    page.wait(lambda: page.row_status(late) == "succeeded", timeout=LIVE, what="succeeded")
    page.wait(lambda: counts(page)["succeeded"] == 4, timeout=LIVE, what="the count")
    assert page.js("return window.notReloaded") is True

    # Its link opens its view in the same tab.
    handles = page.d.window_handles
    job_link(page, late).click()
    page.wait(lambda: page.text("job-id") == late, what="the job's view")
    assert page.d.window_handles == handles
    assert page.d.current_url.endswith(f"#/runs/{late}")


def test_filters_and_paging(page, client):
    alpha = [submit(client, f"a{i}", session_id="alpha")["job_id"] for i in range(7)]
    beta = [submit(client, f"b{i}", session_id="beta")["job_id"] for i in range(3)]
    bad = submit(client, "b-bad", session_id="beta", config={"fail_with": "no"})["job_id"]
    for job_id in alpha + beta + [bad]:
        wait_status(client, job_id)
    everything = [j["job_id"] for j in client.get(RUNS, params={"page_size": 100}).json()["jobs"]]
    page.open()
    page.wait(lambda: page.list_ids() == everything, what="all 11 jobs")

    Select(page.labelled("Per page")).select_by_visible_text("10")
    page.wait(lambda: page.list_ids() == everything[:10], what="page 1 of 10")
    assert "Page 1 of 2" in page.text("page-info")
    assert not page.button("Previous").is_enabled()
    page.button("Next").click()
    page.wait(lambda: page.list_ids() == everything[10:], what="page 2")
    assert "Page 2 of 2" in page.text("page-info")
    assert not page.button("Next").is_enabled()
    page.button("Previous").click()
    page.wait(lambda: page.list_ids() == everything[:10], what="page 1 again")

    Select(page.labelled("Filter by status")).select_by_visible_text("failed")
    page.wait(lambda: page.list_ids() == [bad], what="only the failed job")
    assert page.row_status(bad) == "failed"
    Select(page.labelled("Filter by status")).select_by_visible_text("all")
    page.labelled("Filter by session id").send_keys("beta")
    want = [j["job_id"] for j in client.get(RUNS, params={"session_id": "beta"}).json()["jobs"]]
    assert sorted(want) == sorted(beta + [bad])
    page.wait(lambda: page.list_ids() == want, what="the beta jobs")
    assert {r.text for r in page.d.find_elements(By.CSS_SELECTOR, "#jobs-body td.session")} == {"beta"}
    page.labelled("Filter by session id").send_keys("-none")
    page.wait(lambda: page.list_ids() == [] and page.text("list-empty") == "No jobs match these filters.",
              what="no match")


# 2 ----------------------------------------------------------------------------------------
def test_submit_form(page, client):
    page.open()
    prompt = page.labelled("Prompt")
    assert prompt.tag_name == "textarea" and prompt.accessible_name == "Prompt"
    submit_button = page.button("Submit")
    assert submit_button.accessible_name == "Submit"
    config = page.labelled("Config (JSON object)")
    prompt.send_keys("from the form")

    # A config that is not JSON, or not an object: a clear message, nothing sent.
    config.send_keys("{steps: 2")
    submit_button.click()
    page.wait(lambda: page.text("config-msg").startswith("Config is not valid JSON:"),
              what="the JSON message")
    assert config.get_attribute("aria-invalid") == "true"
    config.clear()
    config.send_keys("[1, 2]")
    submit_button.click()
    page.wait(lambda: page.text("config-msg") == 'Config must be a JSON object, like {"steps": 3}.',
              what="the object message")
    assert client.get(RUNS).json()["total"] == 0

    # What only the server knows (its largest timeout): its 422 detail, as it said it.
    config.clear()
    config.send_keys('{"steps": 2, "sleep_seconds": 0.4}')
    assert not page.labelled("Config (JSON object)").get_attribute("aria-invalid")
    page.labelled("Timeout (s)").send_keys("999999999")
    submit_button.click()
    page.allow_console(failed_to_load(page.server.url + RUNS, 422, "Unprocessable Entity"))
    page.wait(lambda: page.text("submit-msg") ==
              "Not submitted (422): timeout: Value error, timeout must be between 1 and 86400 seconds",
              what="the server's detail")
    assert client.get(RUNS).json()["total"] == 0

    page.labelled("Timeout (s)").clear()
    page.labelled("Timeout (s)").send_keys("120")
    page.labelled("Priority").send_keys("7")
    page.labelled("Session id").send_keys("form-session")
    submit_button.click()
    page.wait(lambda: re.search(r"#/runs/run_[0-9a-f]{12,}$", page.d.current_url), what="its view")
    job_id = page.d.current_url.rsplit("/", 1)[1]
    st = get_status(client, job_id)
    assert (st["priority"], st["timeout"], st["session_id"]) == (7, 120, "form-session")
    assert page.text("job-id") == job_id
    assert job_id in page.text("submit-msg")
    page.wait(lambda: result_text(page) == "from the form", what="its result")
    assert page.text("job-status") == "succeeded"
    assert field(page, "Priority") == "7" and field(page, "Session") == "form-session"
    assert get_status(client, job_id)["progress"]["steps_total"] == 2
    assert prompt.get_attribute("value") == ""

    page.d.find_element(By.LINK_TEXT, "← All jobs").click()
    page.wait(lambda: page.row_status(job_id) == "succeeded", what="its row")


# 3 ----------------------------------------------------------------------------------------
def test_job_view_streams_events_and_progress(page, client):
    # A step every 3 s: the page (opened after the submit) sees step 1 while the job runs,
    # even on a loaded machine.
    job_id = submit(client, "streamed", config={"sleep_seconds": 9, "steps": 3},
                    metadata={"team": "ui"})["job_id"]
    page.open(f"#/runs/{job_id}")
    assert page.text("job-id") == job_id
    bar = page.d.find_element(By.ID, "job-progress")
    assert bar.tag_name == "progress" and bar.accessible_name == "Progress"
    assert page.button("Cancel").accessible_name == "Cancel"
    assert page.button("Delete").accessible_name == "Delete"

    page.wait(lambda: any("Step 1/3" in e for e in page.events()), timeout=10, what="step 1")
    # It came while the job ran (a stream, not a replay of a finished job).
    assert get_status(client, job_id)["status"] == "running"
    assert not any("Step 3/3" in e for e in page.events())
    assert result_text(page) == ""
    first = page.progress()
    assert 33 <= first < 34, first
    page.wait(lambda: any("Step 2/3" in e for e in page.events()), timeout=10, what="step 2")
    page.wait(lambda: page.progress() > first, what="the bar to advance")
    page.wait(lambda: result_text(page) == "streamed", timeout=10, what="the result")
    assert page.text("job-status") == "succeeded"
    assert page.progress() == 100.0

    events = page.events()
    ids = [int(re.match(r"#(\d+) ", e).group(1)) for e in events]
    assert ids == sorted(set(ids)) and ids[0] == 1, events
    assert [e.split(" ", 2)[1] for e in events] == \
        ["status", "status", "progress", "progress", "progress", "result"], events
    assert events[0].endswith("queued") and events[1].endswith("running")
    assert events[-1].endswith("result streamed")
    page.wait(lambda: page.text("job-stream-state") == "Stream ended.", what="stream end")
    assert field(page, "Attempts") == "1"
    assert field(page, "Metadata") == "team: ui"
    assert field(page, "Started") and field(page, "Completed") and field(page, "Duration")
    st = get_status(client, job_id)
    assert field(page, "Duration").endswith(" s") and st["completed_at"]


def test_sse_parser_takes_any_chunking(page):
    """ui/sse.js on its own, in the page: the same events whether the bytes come whole or
    one character at a time (CRLF split across chunks, comments, multi-line data, an
    event without data, a heartbeat without id)."""
    page.open()
    wire = ("event: status\r\nid: 1\r\ndata: {\"status\":\"queued\"}\r\n\r\n"
            ": a comment\n\n"
            "event: progress\nid: 2\ndata: {\"percentage\": 50.0,\ndata:  \"step\": \"x\"}\n\n"
            "id: 3\n\n"
            "event: heartbeat\ndata: {\"timestamp\":\"t\"}\n\n"
            "data:no space\r\r")
    script = """
        const [wire, size, done] = arguments;
        import('./sse.js').then(({SSEParser}) => {
          const got = [];
          const p = new SSEParser((e) => got.push(e));
          for (let i = 0; i < wire.length; i += size) p.push(wire.slice(i, i + size));
          done({got, lastEventId: p.lastEventId});
        });"""
    expected = [
        {"event": "status", "id": "1", "data": '{"status":"queued"}'},
        {"event": "progress", "id": "2", "data": '{"percentage": 50.0,\n "step": "x"}'},
        {"event": "heartbeat", "id": None, "data": '{"timestamp":"t"}'},
        {"event": "message", "id": None, "data": "no space"},
    ]
    for size in (len(wire), 1, 2, 7):
        out = page.d.execute_async_script(script, wire, size)
        assert out["got"] == expected, size
        assert out["lastEventId"] == "3"


# 4 ----------------------------------------------------------------------------------------
def test_cancel_a_running_job(page, client):
    job_id = submit(client, "long", config={"sleep_seconds": 60})["job_id"]
    wait_status(client, job_id, "running")
    page.open(f"#/runs/{job_id}")
    page.wait(lambda: page.text("job-status") == "running", what="running")
    cancel = page.button("Cancel")
    page.wait(cancel.is_enabled, what="Cancel enabled")
    assert not page.button("Delete").is_enabled()  # a running job cannot be deleted
    cancel.click()
    page.wait(lambda: get_status(client, job_id)["status"] == "cancelled", what="API: cancelled")
    page.wait(lambda: page.text("job-status") == "cancelled", timeout=LIVE, what="page: cancelled")
    page.wait(lambda: any(e.split(" ", 2)[1:2] == ["cancelled"] for e in page.events()),
              what="the cancelled event")
    page.wait(lambda: page.text("job-stream-state") == "Stream ended.", what="stream end")
    assert not page.button("Cancel").is_enabled()
    assert page.button("Delete").is_enabled()
    assert result_text(page).startswith("No result: the job cancelled")
    assert page.text("job-msg") == "Cancelled."


# 5 ----------------------------------------------------------------------------------------
def test_delete_says_gone_and_stops_polling(page, client):
    job_id = submit(client, "to delete")["job_id"]
    wait_status(client, job_id)
    page.open(f"#/runs/{job_id}")
    page.wait(lambda: result_text(page) == "to delete", what="its result")
    start = len(page.drain().requests)
    page.button("Delete").click()
    page.wait(lambda: page.text("job-gone") == f"Job {job_id} is gone: it was deleted.",
              what="the gone message")
    assert client.get(f"{RUNS}/{job_id}").status_code == 404
    assert not page.button("Delete").is_enabled() and not page.button("Cancel").is_enabled()

    def after_two_polls():
        after = requests_after(page, start,
                               lambda r: r["method"] == "DELETE" and job_id in r["url"])
        return after if sum(r["url"].endswith("/stats") for r in after) >= 2 else None

    # The page polls /stats every second: two of them prove time passed with no request
    # about the deleted job.
    after = page.wait(after_two_polls, what="two more polls")
    assert not [r for r in after if job_id in r["url"]], after

    # Deleted by someone else while on screen: the next poll's 404 says it is gone.
    other = submit(client, "deleted elsewhere")["job_id"]
    wait_status(client, other)
    page.open(f"#/runs/{other}")
    page.wait(lambda: result_text(page) == "deleted elsewhere", what="its result")
    start = len(page.drain().requests)
    assert client.delete(f"{RUNS}/{other}").status_code == 204
    page.wait(lambda: page.text("job-gone").startswith(f"Job {other} is gone"), timeout=LIVE,
              what="gone after a 404")
    page.allow_console(failed_to_load(f"{page.server.url}{RUNS}/{other}", 404, "Not Found"))

    def after_404():
        after = requests_after(page, start, lambda r: r["url"].endswith(f"{RUNS}/{other}"))
        return after if sum(r["url"].endswith("/stats") for r in after) >= 2 else None

    after = page.wait(after_404, what="two more polls")
    assert not [r for r in after if other in r["url"]], after


# 6 ----------------------------------------------------------------------------------------
def test_api_key_flow(make_server, page_for):
    server = make_server("--api-key", "secret1", "--api-key", "secret2")
    with server.client(headers={"Authorization": "Bearer secret1"}) as mine_c, \
            server.client(headers={"Authorization": "Bearer secret2"}) as theirs_c:
        mine = submit(mine_c, "mine", config={"steps": 2})["job_id"]
        theirs = submit(theirs_c, "theirs")["job_id"]
        wait_status(mine_c, mine)
        wait_status(theirs_c, theirs)
    page = page_for(server).open()

    key = page.labelled("API key")
    assert key.accessible_name == "API key" and key.get_attribute("type") == "password"
    page.wait(lambda: key.is_displayed() and page.d.switch_to.active_element == key,
              what="the key field, focused")
    assert not page.d.find_element(By.ID, "dashboard").is_displayed()
    # Without a key the page asks nothing but /health (which needs none).
    assert [r["url"] for r in page.api_requests()] == [server.url + "/health"]

    # A wrong key: refused, said so, asked again, not kept.
    key.send_keys("wrong-key")
    page.button("Save").click()
    page.allow_console(failed_to_load(server.url + "/stats", 401, "Unauthorized"))
    page.wait(lambda: page.text("auth-msg") ==
              "The server refused this key (401 Unauthorized). Enter a valid API key.",
              what="the refusal")
    assert key.is_displayed()
    assert page.js("return sessionStorage.getItem('runq.apiKey')") is None

    key.clear()
    key.send_keys("secret1")
    page.button("Save").click()
    page.wait(lambda: page.list_ids() == [mine], what="this key's job only")
    assert not key.is_displayed()
    assert theirs not in page.d.find_element(By.TAG_NAME, "body").text
    page.wait(lambda: counts(page)["total"] == 1, what="this key's counts")
    assert page.js("return sessionStorage.getItem('runq.apiKey')") == "secret1"
    assert page.js("return localStorage.length") == 0
    assert page.d.get_cookies() == []

    # Its view, events streamed with the key in a header.
    job_link(page, mine).click()
    page.wait(lambda: result_text(page) == "mine", what="its result")
    page.wait(lambda: any("Step 2/2" in e for e in page.events()), what="its events")

    # The key is in no URL: the address bar, the resource timings, the requests the
    # browser sent, the server's access log. It went in the Authorization header.
    assert "secret" not in page.d.current_url
    names = page.js("return performance.getEntries().map(e => e.name)")
    assert names and not [n for n in names if "secret" in n]
    sent = page.api_requests()
    assert not [r["url"] for r in sent if "secret" in r["url"]]
    stream = [r for r in sent if r["url"].endswith(f"/{mine}/stream")]
    assert stream, [r["url"] for r in sent]
    with_key = [r for r in sent if r["headers"].get("Authorization") == "Bearer secret1"]
    assert stream[0] in with_key
    # Every API request after the key was saved carried it (all but /health and the
    # wrong key's check).
    assert len(with_key) == len(sent) - 2, [(r["url"], r["headers"].get("Authorization")) for r in sent]
    assert not [line for line in server.log if "secret" in line]

    # Forget key: asked again, nothing of that key's left on screen.
    page.d.find_element(By.LINK_TEXT, "← All jobs").click()
    page.button("Forget key").click()
    page.wait(lambda: key.is_displayed(), what="the key form again")
    assert page.js("return sessionStorage.getItem('runq.apiKey')") is None
    assert page.list_ids() == []
    assert mine not in page.d.find_element(By.TAG_NAME, "body").text


def test_a_key_refused_later_is_asked_for_again(make_server, page_for, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("key-one\nkey-two\n")
    server = make_server("--api-keys-file", str(keys))
    with server.client(headers={"Authorization": "Bearer key-one"}) as c:
        job_id = submit(c, "one's job")["job_id"]
    page = page_for(server).open()
    page.labelled("API key").send_keys("key-one")
    page.button("Save").click()
    page.wait(lambda: page.list_ids() == [job_id], what="key-one's job")

    # The operator revokes key-one (keys file reloaded on SIGHUP).
    keys.write_text("key-two\n")
    server.proc.send_signal(signal.SIGHUP)
    with server.client(headers={"Authorization": "Bearer key-one"}) as c:
        wait_until(lambda: c.get("/stats").status_code == 401, what="key-one refused")
    # The pollers in flight when it happened each see one 401.
    page.allow_console(failed_to_load(server.url + "/stats", 401, "Unauthorized"))
    page.allow_console(failed_to_load(server.url + RUNS + "?page=1&page_size=20", 401,
                                      "Unauthorized"))
    page.wait(lambda: page.labelled("API key").is_displayed(), timeout=LIVE, what="asked again")
    assert page.text("auth-msg") == \
        "The server refused the saved key (401 Unauthorized). Enter an API key."
    assert page.js("return sessionStorage.getItem('runq.apiKey')") is None
    assert page.list_ids() == [] and job_id not in page.d.find_element(By.TAG_NAME, "body").text

    page.labelled("API key").send_keys("key-two")
    page.button("Save").click()
    page.wait(lambda: page.text("list-empty") == "No jobs yet.", what="key-two's (no) jobs")
    assert page.list_ids() == []


# 7 ----------------------------------------------------------------------------------------
def test_job_fields_are_shown_as_text(page, client):
    html = "<img src=x onerror=alert(1)><b>x</b>"
    job_id = submit(client, html, session_id="<i>s</i>",
                    metadata={"<b>k</b>": "<script>alert(2)</script>"})["job_id"]
    wait_status(client, job_id)
    page.open()
    page.wait(lambda: page.row_status(job_id) == "succeeded", what="its row")
    row = page.row(job_id)
    assert row.find_element(By.CSS_SELECTOR, "td.session").text == "<i>s</i>"
    assert row.find_element(By.CSS_SELECTOR, "td.what").text == html  # prompt_preview
    job_link(page, job_id).click()
    page.wait(lambda: result_text(page) == html, what="the prompt, literally")
    assert field(page, "Session") == "<i>s</i>"
    assert field(page, "Metadata") == "<b>k</b>: <script>alert(2)</script>"
    assert any(e.endswith(f"result {html}") for e in page.events())
    made = page.js("return document.querySelectorAll('img, b, i, script:not([src])').length")
    assert made == 0
    with pytest.raises(NoAlertPresentException):
        page.d.switch_to.alert.text


# 9 ----------------------------------------------------------------------------------------
def test_phone_sized_window(page, client, driver):
    driver.set_window_size(390, 844)
    long_session = "a-rather-long-session-identifier-" * 3
    job_id = submit(client, "phone " * 80, session_id=long_session,
                    metadata={"comment": "word " * 60})["job_id"]
    wait_status(client, job_id)
    page.open()
    assert page.js("return window.innerWidth") <= 390
    page.wait(lambda: page.row_status(job_id) == "succeeded", what="its row")

    def no_page_scroll():
        return page.js("const e = document.documentElement; return e.scrollWidth <= e.clientWidth")

    assert no_page_scroll()
    width = page.js("return document.documentElement.clientWidth")
    for el in (page.labelled("Prompt"), page.button("Submit")):
        page.js("arguments[0].scrollIntoView({block: 'center'})", el)
        r = el.rect
        assert el.is_displayed() and r["x"] >= 0 and r["x"] + r["width"] <= width, r
    page.labelled("Prompt").send_keys("from a phone")
    page.button("Submit").click()
    page.wait(lambda: result_text(page) == "from a phone", what="its result")
    assert no_page_scroll()
    page.open(f"#/runs/{job_id}")
    page.wait(lambda: result_text(page).startswith("phone phone"), what="the long job")
    assert field(page, "Session") == long_session
    assert no_page_scroll()


# 10 ---------------------------------------------------------------------------------------
def test_keyboard_only_submit(page, client):
    page.open()
    keys = ActionChains(page.d)

    def tab_to(accept, limit=25):
        for _ in range(limit):
            ActionChains(page.d).send_keys(Keys.TAB).perform()
            el = page.d.switch_to.active_element
            if accept(el):
                return el
        raise AssertionError("never reached by Tab")

    tab_to(lambda el: el.accessible_name == "Prompt")
    keys.send_keys("typed with keys").perform()
    button = tab_to(lambda el: el.tag_name == "button" and el.accessible_name == "Submit")
    # The focus shows: :focus-visible matches and draws an outline.
    assert page.js("return document.activeElement.matches(':focus-visible')")
    assert page.js("return getComputedStyle(document.activeElement).outlineStyle") != "none"
    assert button == page.button("Submit")
    ActionChains(page.d).send_keys(Keys.ENTER).perform()
    page.wait(lambda: "#/runs/run_" in page.d.current_url, what="the new job's view")
    job_id = page.d.current_url.rsplit("/", 1)[1]
    assert wait_status(client, job_id)["status"] == "succeeded"
    page.wait(lambda: result_text(page) == "typed with keys", what="its result")
    # The view took the focus (its heading), and Tab goes on from there to its controls.
    assert page.d.switch_to.active_element.get_attribute("id") == "job-title"
    tab_to(lambda el: el.accessible_name == "Delete")


# 11 ---------------------------------------------------------------------------------------
@pytest.mark.postgresql_only
def test_cluster_page_on_one_node_shows_a_job_of_another(make_server, page_for, tmp_path):
    db = str(tmp_path / "cluster.db")
    a = make_server("--node-name", "a", "--max-concurrent", "1", db=db)
    with a.client() as ca:
        # a's only slot is taken before b exists, so the job submitted to b runs on b.
        blocker = submit(ca, "blocker", config={"sleep_seconds": 60})["job_id"]
        wait_status(ca, blocker, "running")
        b = make_server("--node-name", "b", db=db)
        page = page_for(a).open()
        assert page.text("server-info") == "store postgresql · node a"
        with b.client() as cb:
            job_id = submit(cb, "via b", config={"sleep_seconds": 9, "steps": 3})["job_id"]
            page.wait(lambda: page.list_ids()[:1] == [job_id], timeout=LIVE, what="b's job on a")
            job_link(page, job_id).click()
            page.wait(lambda: any("Step 1/3" in e for e in page.events()), timeout=10,
                      what="its events")
            assert get_status(cb, job_id)["status"] == "running"
            page.wait(lambda: result_text(page) == "via b", timeout=15, what="its result")
            assert field(page, "Node") == "b" == get_status(ca, job_id)["node"]
            assert [e.split(" ", 2)[1] for e in page.events()].count("progress") == 3
        assert ca.post(f"{RUNS}/{blocker}/cancel").status_code == 200


# 12 ---------------------------------------------------------------------------------------
def test_screenshot(make_server, page_for, driver, tmp_path):
    """A realistic dashboard, jobs in every state and the chart fed, as a 1280x900 PNG;
    also saved to $RUNQ_SCREENSHOT when set (the README's picture, docs/images/)."""
    server = make_server("--max-concurrent", "2")
    page = page_for(server)
    # The viewport (not the window) is 1280x900.
    driver.set_window_size(WIDTH, HEIGHT)
    page.open()
    dw, dh = page.js("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]")
    driver.set_window_size(WIDTH + dw, HEIGHT + dh)
    page.wait(lambda: page.js("return [innerWidth, innerHeight]") == [WIDTH, HEIGHT], what="the size")
    with server.client() as c:
        submit(c, "Index the support tickets", session_id="nightly",
               config={"sleep_seconds": 60, "steps": 12})
        quick = [submit(c, f"Summarise report {i}", session_id=("alice", "bob", "carol")[i % 3],
                        config={"sleep_seconds": 0.6, "steps": 2,
                                **({"fail_with": "model refused"} if i == 4 else {})})["job_id"]
                 for i in range(9)]
        later = submit(c, "Translate the handbook", session_id="nightly",
                       config={"sleep_seconds": 60, "steps": 20})["job_id"]
        waiting = [submit(c, f"Queued task {i}", session_id="batch")["job_id"] for i in range(3)]
        assert c.post(f"{RUNS}/{waiting[0]}/cancel").status_code == 200
        wait_status(c, quick[-1])
        wait_status(c, later, "running")
        page.wait(lambda: len(page.d.find_elements(By.CSS_SELECTOR, "#chart rect.bar")) >= 2,
                  what="a chart with data")
        page.wait(lambda: counts(page)["running"] == 2 and counts(page)["queued"] == 2,
                  timeout=LIVE, what="the counts")
        page.wait(lambda: page.row_status(later) == "running", timeout=LIVE, what="the list")
        shot = tmp_path / "dashboard.png"
        assert driver.save_screenshot(str(shot))
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (WIDTH, HEIGHT)  # the IHDR's size
    if os.environ.get("RUNQ_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["RUNQ_SCREENSHOT"])
