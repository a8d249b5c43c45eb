"""The Python floor: a FastAPI app that answers a job's status JSON from a dict.

bench/run.sh runs it under uvicorn (one worker, pinned like runq) with BENCH_BODY_FILE
naming a file that holds the status body runq gave for one finished job.
"""
import json
import os

from fastapi import FastAPI, HTTPException

with open(os.environ["BENCH_BODY_FILE"], encoding="utf-8") as f:
    _body = json.load(f)
JOBS = {_body["job_id"]: _body}

app = FastAPI()


@app.get("/api/v1/runs/{job_id}")
async def status(job_id: str):
    job = JOBS.get(job_id)
    if job is None:
        raise HTTPException(status_code=404, detail=f"Job not found: {job_id}")
    return job
