"""GET /api/v1/runs/{id}/stream: Server-Sent Events (API.md "stream")."""
import json
import re
import threading
import time

from conftest import (TS_RE, collect_stream, get_status, iter_sse, submit, wait_status)

RUNS = "/api/v1/runs"
TERMINAL_EVENTS = ("result", "error", "cancelled")


def check_wire_shape(events):
    """Each event: one `event:`, one `id:` (none for heartbeats), one `data:` line of
    valid JSON; ids strictly increasing integers."""
    last = 0
    for ev in events:
        assert ev.names.count("event") == 1, ev
        assert ev.names.count("data") == 1, ev
        assert ev.data is not None, f"data is not JSON: {ev}"
        if ev.event == "heartbeat":
            assert "id" not in ev.names, ev
            continue
        assert ev.names.count("id") == 1, ev
        assert re.fullmatch(r"[0-9]+", ev.id), ev
        assert ev.id_int > last, (last, ev)
        last = ev.id_int
        assert set(ev.names) <= {"event", "id", "data", "retry"}, ev


def assert_ended_by(events, kind, data):
    """The stream's last event is the terminal one: the server ended the stream right
    after it (no heartbeat or anything else follows)."""
    terminal = [i for i, e in enumerate(events) if e.event in TERMINAL_EVENTS]
    assert terminal, f"no terminal event in {events}"
    assert terminal[-1] == len(events) - 1, (
        f"the stream went on after its terminal event: {events[terminal[-1]:]}")
    assert events[-1].event == kind, events
    assert events[-1].data == data, events[-1]


def without_heartbeats(events):
    return [e for e in events if e.event != "heartbeat"]


def as_tuples(events):
    return [(e.id, e.event, e.data) for e in without_heartbeats(events)]


def check_running_then_progress(events, job_id):
    evs = without_heartbeats(events)
    kinds = [e.event for e in evs]
    assert set(kinds) <= {"status", "progress", "output", "result", "error", "cancelled"}, kinds
    running = [i for i, e in enumerate(evs) if e.event == "status"
               and e.data.get("status") == "running"]
    assert running, kinds
    for e in evs:
        if e.event == "status":
            assert set(e.data) == {"status", "job_id"}, e
            assert e.data["job_id"] == job_id
            assert e.data["status"] in ("queued", "running"), e
        if e.event == "progress":
            assert {"percentage", "step"} <= set(e.data), e
            assert isinstance(e.data["percentage"], float), e
            assert re.search(r'"percentage"\s*:\s*-?[0-9]+\.[0-9]', e.data_raw), e.data_raw
            assert 0.0 <= e.data["percentage"] <= 100.0
    first_progress = next((i for i, e in enumerate(evs) if e.event == "progress"), None)
    if first_progress is not None:
        assert running[0] < first_progress, kinds
    # exactly one terminal event, and it is the last one
    terminal = [i for i, e in enumerate(evs) if e.event in TERMINAL_EVENTS]
    assert terminal == [len(evs) - 1], kinds


def test_stream_of_successful_job(client):
    job = submit(client, "streamed \u00e9 result\nline2", config={"sleep_seconds": 0.6, "steps": 3})
    r, events = collect_stream(client, job["job_id"])
    assert r.headers["content-type"].startswith("text/event-stream")
    check_wire_shape(events)
    check_running_then_progress(events, job["job_id"])
    evs = without_heartbeats(events)
    # a `status` event for the queued state may come first; then `running`
    if evs[0].event == "status" and evs[0].data["status"] == "queued":
        assert evs[0].data == {"status": "queued", "job_id": job["job_id"]}
        evs = evs[1:]
    assert evs[0].event == "status" and evs[0].data == {"status": "running",
                                                        "job_id": job["job_id"]}
    progress = [e for e in evs if e.event == "progress"]
    assert len(progress) >= 3, evs
    pct = [e.data["percentage"] for e in progress]
    assert pct == sorted(pct), pct
    assert_ended_by(events, "result", {"result": "streamed \u00e9 result\nline2"})
    assert get_status(client, job["job_id"])["status"] == "succeeded"


def test_stream_of_failed_job_ends_with_error(client):
    job = submit(client, "x", config={"sleep_seconds": 0.2, "fail_with": "kaboom \"quoted\""})
    _, events = collect_stream(client, job["job_id"])
    check_wire_shape(events)
    check_running_then_progress(events, job["job_id"])
    assert_ended_by(events, "error", {"error": "kaboom \"quoted\""})
    assert not [e for e in events if e.event == "result"]


def test_stream_of_timed_out_job_ends_with_error(client):
    job = submit(client, "x", timeout=1, config={"sleep_seconds": 10})
    _, events = collect_stream(client, job["job_id"])
    check_wire_shape(events)
    assert_ended_by(events, "error", {"error": "Job timed out after 1s"})


def test_stream_of_cancelled_job_live(server, client):
    job = submit(client, "x", config={"sleep_seconds": 30})
    events = []
    t0 = None
    with client.stream("GET", f"{RUNS}/{job['job_id']}/stream", timeout=10) as r:
        assert r.status_code == 200
        for ev in iter_sse(r):
            events.append(ev)
            if ev.event == "status" and ev.data.get("status") == "running" and t0 is None:
                with server.client() as c2:
                    assert c2.post(f"{RUNS}/{job['job_id']}/cancel").status_code == 200
                t0 = time.monotonic()
    assert t0 is not None
    assert time.monotonic() - t0 < 2.0
    check_wire_shape(events)
    assert_ended_by(events, "cancelled", {"message": "Job was cancelled"})
    assert not [e for e in events if e.event in ("result", "error")]


def test_stream_of_queued_job_cancelled(make_server):
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        blocker = submit(c, "b", config={"sleep_seconds": 30})
        wait_status(c, blocker["job_id"], "running")
        job = submit(c, "q")
        out = {}

        def reader():
            with s.client() as c2:
                out["events"] = collect_stream(c2, job["job_id"])[1]

        t = threading.Thread(target=reader)
        t.start()
        time.sleep(0.3)
        assert c.post(f"{RUNS}/{job['job_id']}/cancel").status_code == 200
        t.join(5)
        assert not t.is_alive()
        events = out["events"]
        check_wire_shape(events)
        assert_ended_by(events, "cancelled", {"message": "Job was cancelled"})
        assert not [e for e in events if e.event == "status" and e.data["status"] == "running"]
        c.post(f"{RUNS}/{blocker['job_id']}/cancel")


def test_stream_of_finished_job_replays_the_same_events(client):
    job = submit(client, "replay me", config={"sleep_seconds": 0.4, "steps": 4})
    _, live = collect_stream(client, job["job_id"])
    wait_status(client, job["job_id"])
    t0 = time.monotonic()
    r, replay = collect_stream(client, job["job_id"])
    assert time.monotonic() - t0 < 1.0
    assert r.headers["content-type"].startswith("text/event-stream")
    check_wire_shape(replay)
    assert as_tuples(replay) == as_tuples(live)
    assert_ended_by(replay, "result", {"result": "replay me"})
    # and again: replays are stable
    _, replay2 = collect_stream(client, job["job_id"])
    assert as_tuples(replay2) == as_tuples(live)


def test_stream_of_finished_failed_and_cancelled_jobs_replay(client):
    failed = submit(client, "f", config={"fail_with": "bad"})
    wait_status(client, failed["job_id"])
    _, ev = collect_stream(client, failed["job_id"])
    check_wire_shape(ev)
    assert_ended_by(ev, "error", {"error": "bad"})

    cancelled = submit(client, "c", config={"sleep_seconds": 30})
    wait_status(client, cancelled["job_id"], "running")
    client.post(f"{RUNS}/{cancelled['job_id']}/cancel")
    _, ev = collect_stream(client, cancelled["job_id"])
    check_wire_shape(ev)
    assert_ended_by(ev, "cancelled", {"message": "Job was cancelled"})


def test_last_event_id_on_finished_job(client):
    job = submit(client, "resume", config={"sleep_seconds": 0.3, "steps": 3})
    wait_status(client, job["job_id"])
    _, full = collect_stream(client, job["job_id"])
    full = without_heartbeats(full)
    assert len(full) >= 4
    for cut in range(len(full)):
        last_id = full[cut].id
        _, rest = collect_stream(client, job["job_id"], headers={"Last-Event-ID": last_id})
        check_wire_shape(rest)
        assert as_tuples(rest) == as_tuples(full[cut + 1:]), (last_id, rest)


def test_last_event_id_zero_replays_everything(client):
    job = submit(client, "zero", config={"sleep_seconds": 0.2, "steps": 2})
    wait_status(client, job["job_id"])
    _, full = collect_stream(client, job["job_id"])
    _, again = collect_stream(client, job["job_id"], headers={"Last-Event-ID": "0"})
    assert as_tuples(again) == as_tuples(full)
    assert as_tuples(full)[0][0] == "1"


def test_last_event_id_after_the_last_event_ends_at_once(client):
    job = submit(client, "x")
    wait_status(client, job["job_id"])
    _, full = collect_stream(client, job["job_id"])
    full = without_heartbeats(full)
    assert full[-1].event == "result"
    t0 = time.monotonic()
    _, rest = collect_stream(client, job["job_id"], headers={"Last-Event-ID": full[-1].id})
    assert without_heartbeats(rest) == []
    assert time.monotonic() - t0 < 2.0


def test_last_event_id_resume_live_no_duplicates(server, client):
    job = submit(client, "live resume", config={"sleep_seconds": 1.5, "steps": 6})
    first = []
    with client.stream("GET", f"{RUNS}/{job['job_id']}/stream", timeout=10) as r:
        for ev in iter_sse(r):
            first.append(ev)
            if len([e for e in first if e.event == "progress"]) >= 2:
                break
    last_id = first[-1].id
    assert get_status(client, job["job_id"])["status"] == "running"
    _, second = collect_stream(client, job["job_id"], headers={"Last-Event-ID": last_id})
    check_wire_shape(second)
    assert all(e.id_int > int(last_id) for e in without_heartbeats(second))
    joined = as_tuples(first) + as_tuples(second)
    ids = [t[0] for t in joined]
    assert len(ids) == len(set(ids))
    _, full = collect_stream(client, job["job_id"])
    assert joined == as_tuples(full)
    assert_ended_by(second, "result", {"result": "live resume"})


def test_two_streams_see_the_same_events(server, client):
    job = submit(client, "twice", config={"sleep_seconds": 0.8, "steps": 4})
    out = []

    def reader():
        with server.client() as c:
            out.append(as_tuples(collect_stream(c, job["job_id"])[1]))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(out) == 3
    assert out[0] == out[1] == out[2]
    assert out[0][-1][1] == "result"


def test_heartbeat_after_five_idle_seconds(server, client):
    job = submit(client, "x", config={"sleep_seconds": 30})
    events = []
    t_start = time.monotonic()
    with client.stream("GET", f"{RUNS}/{job['job_id']}/stream", timeout=10) as r:
        assert r.status_code == 200
        it = iter_sse(r)
        for ev in it:
            events.append(ev)
            if ev.event == "heartbeat":
                break
            assert time.monotonic() - t_start < 8.0, events
        hb = events[-1]
        assert hb.event == "heartbeat", events
        before = [e for e in events[:-1]]
        assert before, events
        idle = hb.t - before[-1].t
        assert 4.0 <= idle <= 7.0, idle
        assert "id" not in hb.names
        assert set(hb.data) == {"timestamp"}
        assert TS_RE.match(hb.data["timestamp"]), hb.data
        with server.client() as c2:
            c2.post(f"{RUNS}/{job['job_id']}/cancel")
        for ev in it:
            events.append(ev)
    check_wire_shape(events)
    assert_ended_by(events, "cancelled", {"message": "Job was cancelled"})


def test_stream_404(shared_client):
    r = shared_client.get(f"{RUNS}/run_000000000001/stream")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"detail": "Job not found: run_000000000001"}


def test_stream_data_lines_are_single_line_json(client):
    prompt = "multi\nline\r\nprompt\n\nwith blank lines"
    job = submit(client, prompt, config={"fail_with": "err\nline2"})
    _, events = collect_stream(client, job["job_id"])
    check_wire_shape(events)
    assert_ended_by(events, "error", {"error": "err\nline2"})
    job2 = submit(client, prompt)
    _, events = collect_stream(client, job2["job_id"])
    check_wire_shape(events)
    assert_ended_by(events, "result", {"result": prompt})
    assert json.loads(events[-1].data_raw) == {"result": prompt}
