// One job's view: its status object polled every second, its events streamed as they
// arrive, its result (or error) once it has ended, and Cancel / Delete. Everything the
// view started (poll, stream) belongs to one `view` object and stops with it: on leaving
// the view, and for good once the job is gone (deleted, or 404).

import { call, every, openStream, ready } from './api.js';
import { readEvents } from './sse.js';
import { $, h, setText, show } from './dom.js';
import { TERMINAL, fmtDuration, fmtPercent, fmtTime, secondsBetween, shorten } from './format.js';

const MAX_EVENTS = 500; // the list keeps the newest this many
const FIELDS = ['Created', 'Started', 'Completed', 'Duration', 'Attempts', 'Priority',
                'Timeout', 'Agent', 'Node', 'Session', 'Metadata', 'Error', 'Expires'];

let view = null;
const dd = {}; // field label -> <dd>

const runUrl = (id) => `/api/v1/runs/${encodeURIComponent(id)}`;

export function initJob() {
  const dl = $('job-fields');
  for (const label of FIELDS) {
    dd[label] = h('dd');
    dl.append(h('div', {}, h('dt', {}, label), dd[label]));
  }
  $('cancel-job').addEventListener('click', cancelJob);
  $('delete-job').addEventListener('click', deleteJob);
}

export function openJob(id) {
  closeJob();
  const v = {
    id,
    abort: new AbortController(),
    status: null,
    lastEventId: null,
    streamDone: false,
    resultShown: false,
    busy: false,
    polling: null, // the status request under way, if any
    gone: false,
  };
  view = v;
  reset(v);
  v.poller = every(1000, () => poll(v));
  stream(v);
}

export function closeJob() {
  if (!view) return;
  view.abort.abort();
  view.poller.stop();
  view = null;
}

const live = (v) => v === view && !v.gone;

function reset(v) {
  setText($('job-id'), v.id);
  document.title = `${v.id} · runq`;
  show($('job-gone'), false);
  setText($('job-status'), '');
  delete $('job-status').dataset.status;
  setText($('job-msg'), '');
  $('job-progress').value = 0;
  setText($('job-progress-text'), '');
  for (const el of Object.values(dd)) el.replaceChildren();
  $('job-events').replaceChildren();
  setText($('job-stream-state'), '');
  $('job-output').textContent = '';
  show($('job-output-box'), false);
  setText($('job-result'), '');
  $('cancel-job').disabled = true;
  $('delete-job').disabled = true;
}

// While Cancel or Delete is under way the poll waits: a status request that reached the
// server after a delete would be a 404 (and a console error) about a job we know is gone.
function poll(v) {
  if (v.busy) return undefined;
  v.polling = (async () => {
    try {
      const job = await call(runUrl(v.id), { signal: v.abort.signal });
      if (!live(v)) return;
      render(v, job);
      if (TERMINAL.has(job.status)) await outcome(v, job);
    } catch (e) {
      failed(v, e);
    }
  })();
  return v.polling;
}

// An error of any request of this view: 404 means the job is gone; the rest is shown.
function failed(v, e) {
  if (!live(v) || e.name === 'AbortError' || e.status === 401) return;
  if (e.status === 404) gone(v, `Job ${v.id} is gone: the server has no such job (deleted, expired, or not visible with this key).`);
  else if (e.status) setText($('job-msg'), e.message);
}

function render(v, job) {
  v.status = job.status;
  const status = $('job-status');
  setText(status, job.status);
  status.dataset.status = job.status;
  const p = job.progress || {};
  if (typeof p.percentage === 'number') $('job-progress').value = p.percentage;
  const steps = p.steps_total ? ` (${p.steps_completed} of ${p.steps_total} steps)` : '';
  setText($('job-progress-text'), `${fmtPercent(p.percentage)}${p.current_step ? ` · ${p.current_step}` : ''}${steps}`);
  setText(dd.Created, fmtTime(job.created_at));
  setText(dd.Started, fmtTime(job.started_at));
  setText(dd.Completed, fmtTime(job.completed_at));
  const secs = secondsBetween(job.started_at, job.completed_at);
  setText(dd.Duration, secs === null ? '' : fmtDuration(secs) + (job.completed_at ? '' : ' so far'));
  setText(dd.Attempts, job.attempts ?? '');
  setText(dd.Priority, job.priority ?? '');
  setText(dd.Timeout, job.timeout ? `${job.timeout} s` : '');
  setText(dd.Agent, job.agent_id || '');
  setText(dd.Node, job.node || '');
  setText(dd.Session, job.session_id || '');
  renderMetadata(job.metadata);
  setText(dd.Error, job.error || '');
  setText(dd.Expires, fmtTime(job.expires_at));
  buttons(v);
}

function renderMetadata(metadata) {
  const entries = Object.entries(metadata || {});
  const key = JSON.stringify(entries);
  if (dd.Metadata.dataset.shown === key) return;
  dd.Metadata.dataset.shown = key;
  dd.Metadata.replaceChildren(entries.length
    ? h('ul', { class: 'meta' }, entries.map(([k, val]) => h('li', {}, h('span', { class: 'mono' }, k), ': ', String(val))))
    : '');
}

function buttons(v) {
  const known = v.status !== null && live(v);
  $('cancel-job').disabled = !known || v.busy || TERMINAL.has(v.status);
  $('delete-job').disabled = !known || v.busy || !TERMINAL.has(v.status);
}

// The job has ended: its result (200 from /result only when it succeeded) or its error.
// /result is not asked for a failed or cancelled job: its 400 would be a console error,
// and the status object already carries the error.
async function outcome(v, job) {
  if (job.status !== 'succeeded') {
    setText($('job-result'), `No result: the job ${job.status}${job.error ? `. Error: ${job.error}` : '.'}`);
    return;
  }
  if (v.resultShown) return;
  const r = await call(`${runUrl(v.id)}/result`, { signal: v.abort.signal });
  if (!live(v)) return;
  v.resultShown = true;
  setText($('job-result'), typeof r.result === 'string' ? r.result : JSON.stringify(r.result, null, 2));
  if (typeof r.duration_seconds === 'number') setText(dd.Duration, fmtDuration(r.duration_seconds));
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => {
    clearTimeout(t);
    resolve();
  }, { once: true });
});

// Reads the event stream; after a drop it resumes with Last-Event-ID (no event twice).
// It ends with the job (result, error or cancelled event) or with the view.
async function stream(v) {
  while (live(v) && !v.streamDone) {
    if (!ready()) {
      await sleep(1000, v.abort.signal);
      continue;
    }
    const knownEnded = TERMINAL.has(v.status);
    try {
      setText($('job-stream-state'), 'Streaming events…');
      const res = await openStream(`${runUrl(v.id)}/stream`,
                                   { signal: v.abort.signal, lastEventId: v.lastEventId });
      await readEvents(res, (ev) => onEvent(v, ev));
    } catch (e) {
      failed(v, e);
      if (!live(v)) return;
    }
    // Ended without a final event although the job had ended before we asked: nothing
    // more will come.
    if (knownEnded) break;
    if (live(v) && !v.streamDone) {
      setText($('job-stream-state'), 'Stream interrupted; reconnecting…');
      await sleep(1000, v.abort.signal);
    }
  }
  if (live(v)) setText($('job-stream-state'), 'Stream ended.');
}

function summary(name, data) {
  if (data === null || typeof data !== 'object') return String(data ?? '');
  switch (name) {
    case 'status': {
      let s = String(data.status ?? '');
      if (data.retry_in !== undefined) s += ` (retry in ${data.retry_in} s)`;
      if (data.error) s += `: ${data.error}`;
      return s;
    }
    case 'progress':
      return `${fmtPercent(data.percentage)}${data.step ? ` · ${data.step}` : ''}`;
    case 'result':
      return shorten(String(data.result ?? ''), 200);
    case 'error':
      return String(data.error ?? '');
    case 'cancelled':
      return String(data.message ?? '');
    default:
      return JSON.stringify(data);
  }
}

function onEvent(v, ev) {
  if (!live(v) || ev.event === 'heartbeat') return;
  if (ev.id !== null) {
    const n = Number(ev.id);
    if (v.lastEventId !== null && n <= v.lastEventId) return; // seen before a reconnect
    v.lastEventId = n;
  }
  let data;
  try {
    data = JSON.parse(ev.data);
  } catch {
    data = ev.data;
  }
  if (ev.event === 'output') {
    // Partial output is text to read as a whole, not a list item per delta.
    $('job-output').append(String(data && data.delta !== undefined ? data.delta : ''));
    show($('job-output-box'), true);
    return;
  }
  if (ev.event === 'progress' && data && typeof data.percentage === 'number') {
    $('job-progress').value = data.percentage;
    setText($('job-progress-text'), summary('progress', data));
  }
  if (ev.event === 'status' && data && data.status) {
    setText($('job-status'), data.status);
    $('job-status').dataset.status = data.status;
  }
  const list = $('job-events');
  list.append(h('li', {},
    h('span', { class: 'ev-id' }, ev.id !== null ? `#${ev.id}` : ''), ' ',
    h('span', { class: 'ev-name' }, ev.event), ' ',
    h('span', { class: 'ev-data' }, summary(ev.event, data))));
  while (list.childElementCount > MAX_EVENTS) list.firstElementChild.remove();
  if (['result', 'error', 'cancelled'].includes(ev.event)) {
    v.streamDone = true;
    v.poller.now(); // the final status and the result, without waiting for the next poll
  }
}

// Cancel and Delete: the buttons off and the status poll held while the request is under
// way (no status request may cross it, see poll), the outcome on the page.
async function act(busyText, request) {
  const v = view;
  if (!v || !live(v)) return;
  v.busy = true;
  buttons(v);
  setText($('job-msg'), busyText);
  try {
    await v.polling;
    if (live(v)) await request(v);
  } catch (e) {
    failed(v, e);
  } finally {
    v.busy = false;
    if (live(v)) {
      buttons(v);
      v.poller.now();
    }
  }
}

const cancelJob = () => act('Cancelling…', async (v) => {
  const job = await call(`${runUrl(v.id)}/cancel`, { method: 'POST', signal: v.abort.signal });
  if (!live(v)) return;
  render(v, job);
  setText($('job-msg'), job.status === 'cancelled' ? 'Cancelled.'
    : `Cancel requested; the job is ${job.status} for now.`);
});

const deleteJob = () => act('Deleting…', async (v) => {
  await call(runUrl(v.id), { method: 'DELETE', signal: v.abort.signal });
  gone(v, `Job ${v.id} is gone: it was deleted.`);
});

// The job no longer exists: say so, and stop every request about it.
function gone(v, message) {
  if (!live(v)) return;
  v.gone = true;
  v.abort.abort();
  v.poller.stop();
  setText($('job-msg'), '');
  setText($('job-stream-state'), '');
  const note = $('job-gone');
  setText(note, message);
  show(note, true);
  $('cancel-job').disabled = true;
  $('delete-job').disabled = true;
  // The disabled button lost the focus: give it to the message, which is read out.
  if (document.activeElement === document.body || $('job-view').contains(document.activeElement)) {
    note.focus();
  }
}
