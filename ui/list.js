// The jobs list: GET /api/v1/runs (newest first) with filters and paging, polled every
// second while it is on screen. Rows are kept per job id and updated in place, so a
// poll does not rebuild the table (focus and selection survive).

import { call, every, withQuery } from './api.js';
import { $, h, setText, show } from './dom.js';
import { fmtTime, shorten } from './format.js';

const state = { status: '', session: '', page: 1, pageSize: 20 };
const rows = new Map(); // job id -> {tr, status, created, what, session}
let poller = null;
let generation = 0; // bumped when the query changes; older answers are dropped

export function initList() {
  $('filters').addEventListener('submit', (e) => e.preventDefault());
  $('filter-status').addEventListener('change', (e) => {
    state.status = e.target.value;
    changed();
  });
  let typing = null;
  $('filter-session').addEventListener('input', (e) => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      state.session = e.target.value.trim();
      changed();
    }, 250);
  });
  $('page-size').addEventListener('change', (e) => {
    state.pageSize = Number(e.target.value);
    changed();
  });
  $('prev-page').addEventListener('click', () => {
    if (state.page > 1) {
      state.page -= 1;
      changed(false);
    }
  });
  $('next-page').addEventListener('click', () => {
    state.page += 1;
    changed(false);
  });
}

function changed(resetPage = true) {
  if (resetPage) state.page = 1;
  generation += 1;
  refresh();
}

export function startList() {
  if (!poller) poller = every(1000, load);
}

export function stopList() {
  if (poller) poller.stop();
  poller = null;
}

export function refresh() {
  if (poller) poller.now();
}

// Forgets the rows (another key's jobs must not stay on screen).
export function clearList() {
  rows.clear();
  $('jobs-body').replaceChildren();
  setText($('page-info'), '');
  show($('list-empty'), false);
}

async function load() {
  const gen = generation;
  const query = {
    status: state.status,
    session_id: state.session,
    page: state.page,
    page_size: state.pageSize,
  };
  let body;
  try {
    body = await call(withQuery('/api/v1/runs', query));
  } catch (e) {
    if (gen === generation && e.status && e.status !== 401) {
      setText($('list-empty'), `Could not load the jobs: ${e.message}`);
      show($('list-empty'), true);
    }
    return;
  }
  if (gen !== generation) return;
  const lastPage = Math.max(1, Math.ceil(body.total / state.pageSize));
  if (state.page > lastPage) {
    // Jobs were deleted under us: show the last page that exists.
    state.page = lastPage;
    changed(false);
    return;
  }
  render(body.jobs);
  setText($('page-info'), `Page ${state.page} of ${lastPage} · ${body.total} ` +
          (body.total === 1 ? 'job' : 'jobs'));
  $('prev-page').disabled = state.page <= 1;
  $('next-page').disabled = state.page >= lastPage;
  const filtered = state.status || state.session;
  setText($('list-empty'), filtered ? 'No jobs match these filters.' : 'No jobs yet.');
  show($('list-empty'), body.jobs.length === 0);
}

function makeRow(id) {
  const link = h('a', { href: `#/runs/${encodeURIComponent(id)}`, class: 'mono' }, id);
  const row = {
    status: h('span', { class: 'status' }),
    created: h('time'),
    what: h('td', { class: 'what' }),
    session: h('td', { class: 'session' }),
  };
  row.tr = h('tr', {}, h('td', { class: 'job' }, link), h('td', { class: 'status-cell' }, row.status),
             h('td', { class: 'created' }, row.created), row.what, row.session);
  return row;
}

// A short line about what the job is: the head of its prompt (a list item's
// prompt_preview), whitespace collapsed.
function what(job) {
  return typeof job.prompt_preview === 'string' ? shorten(job.prompt_preview, 60) : '';
}

function render(jobs) {
  const body = $('jobs-body');
  const keep = new Set();
  let ref = body.firstChild;
  for (const job of jobs) {
    keep.add(job.job_id);
    let row = rows.get(job.job_id);
    if (!row) {
      row = makeRow(job.job_id);
      rows.set(job.job_id, row);
    }
    setText(row.status, job.status);
    row.status.dataset.status = job.status;
    setText(row.created, fmtTime(job.created_at));
    row.created.dateTime = job.created_at || '';
    setText(row.what, what(job));
    setText(row.session, job.session_id || '');
    // Put the row in place, moving it only if it is not already there.
    if (row.tr === ref) ref = ref.nextSibling;
    else body.insertBefore(row.tr, ref);
  }
  for (const [id, row] of rows) {
    if (!keep.has(id)) {
      row.tr.remove();
      rows.delete(id);
    }
  }
}
