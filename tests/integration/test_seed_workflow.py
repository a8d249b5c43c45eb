"""The code samples of seeds/get-run-result.md, run verbatim against a real runq
(only API_URL / the base URL are replaced by the server's)."""
import json
import re
import shutil
import subprocess
import sys

from conftest import JOB_ID_RE, submit, wait_status

# "Complete Workflow Example", verbatim from the seed page.
WORKFLOW = '''import httpx
import time

API_URL = "http://127.0.0.1:8005"

def submit_and_get_result(prompt):
    # Submit job
    response = httpx.post(
        f"{API_URL}/api/v1/runs",
        json={"prompt": prompt}
    )
    job_id = response.json()["job_id"]
    print(f"Submitted job: {job_id}")
    
    # Wait for completion
    while True:
        status = httpx.get(f"{API_URL}/api/v1/runs/{job_id}").json()
        
        if status["status"] == "succeeded":
            # Get result
            result = httpx.get(f"{API_URL}/api/v1/runs/{job_id}/result").json()
            return result["result"]
        elif status["status"] in ("failed", "cancelled"):
            raise Exception(f"Job {status['status']}: {status.get('error', 'Unknown error')}")
        
        time.sleep(status.get("retry_after", 2))

result = submit_and_get_result("What is 2+2?")
print(f"Result: {result}")
'''

# The "Python" request example, verbatim.
RESULT_SNIPPET = '''import httpx

job_id = "run_abc123"

# Get result (only works if job succeeded)
response = httpx.get(f"http://127.0.0.1:8005/api/v1/runs/{job_id}/result")

if response.status_code == 200:
    result = response.json()
    print(f"Result: {result['result']}")
    print(f"Duration: {result['duration_seconds']}s")
elif response.status_code == 404:
    print("Job not found")
elif response.status_code == 400:
    print("Job not yet complete or failed")
'''

PY = "/usr/bin/python3" if shutil.which("/usr/bin/python3") else sys.executable


def run_py(code, timeout=30):
    return subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=timeout)


def test_complete_workflow_example_verbatim(server):
    code = WORKFLOW.replace('API_URL = "http://127.0.0.1:8005"', f'API_URL = "{server.url}"')
    assert code != WORKFLOW
    p = run_py(code)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 2, p.stdout
    m = re.fullmatch(r"Submitted job: (\S+)", lines[0])
    assert m and JOB_ID_RE.match(m.group(1)), lines[0]
    assert lines[1] == "Result: What is 2+2?"
    with server.client() as c:
        st = c.get(f"/api/v1/runs/{m.group(1)}").json()
        assert st["status"] == "succeeded"


def test_complete_workflow_example_with_busy_server(make_server):
    # the job is queued behind another one, so the example really polls (retry_after 2)
    s = make_server("--max-concurrent", "1")
    with s.client() as c:
        submit(c, "blocker", config={"sleep_seconds": 1.0})
    code = WORKFLOW.replace('API_URL = "http://127.0.0.1:8005"', f'API_URL = "{s.url}"')
    p = run_py(code)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[1] == "Result: What is 2+2?"


def test_complete_workflow_example_failed_job_raises(server):
    code = WORKFLOW.replace('API_URL = "http://127.0.0.1:8005"', f'API_URL = "{server.url}"')
    code = code.replace('json={"prompt": prompt}',
                        'json={"prompt": prompt, "config": {"fail_with": "Agent exploded"}}')
    p = run_py(code)
    assert p.returncode == 1
    assert "Exception: Job failed: Agent exploded" in p.stderr, p.stderr


def snippet_for(server, job_id):
    return (RESULT_SNIPPET.replace('job_id = "run_abc123"', f'job_id = "{job_id}"')
            .replace("http://127.0.0.1:8005", server.url))


def test_result_snippet_success(server, client):
    job = submit(client, "The quarterly sales data shows a 15% increase",
                 config={"sleep_seconds": 0.1})
    wait_status(client, job["job_id"])
    p = run_py(snippet_for(server, job["job_id"]))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "Result: The quarterly sales data shows a 15% increase"
    m = re.fullmatch(r"Duration: ([0-9]+\.[0-9]+(?:e-?[0-9]+)?)s", lines[1])
    assert m, lines[1]
    assert 0.1 <= float(m.group(1)) < 2.0


def test_result_snippet_not_found(server):
    p = run_py(snippet_for(server, "run_abc123"))
    assert p.returncode == 0, p.stderr
    assert p.stdout == "Job not found\n"


def test_result_snippet_not_complete_and_failed(server, client):
    running = submit(client, "x", config={"sleep_seconds": 30})
    wait_status(client, running["job_id"], "running")
    p = run_py(snippet_for(server, running["job_id"]))
    assert p.stdout == "Job not yet complete or failed\n", p.stderr
    failed = submit(client, "x", config={"fail_with": "e"})
    wait_status(client, failed["job_id"])
    p = run_py(snippet_for(server, failed["job_id"]))
    assert p.stdout == "Job not yet complete or failed\n", p.stderr
    client.post(f"/api/v1/runs/{running['job_id']}/cancel")


def test_curl_example(server, client):
    curl = shutil.which("curl")
    assert curl, "curl is needed for the seed's cURL example"
    job = submit(client, "curl me")
    wait_status(client, job["job_id"])
    url = f"{server.url}/api/v1/runs/{job['job_id']}/result"
    p = subprocess.run([curl, "-s", url], capture_output=True, text=True, timeout=10)
    body = json.loads(p.stdout)
    assert body["result"] == "curl me" and body["status"] == "succeeded"
    assert body["job_id"] == job["job_id"]
