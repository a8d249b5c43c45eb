// Starts the page: asks /health whether a key is needed, then routes between the list
// (#/) and one job's view (#/runs/<id>), the hash keeping the page a single document.

import * as api from './api.js';
import { askForKey, initAuth, update as updateAuth } from './auth.js';
import { $, setText, show } from './dom.js';
import { closeJob, initJob, openJob } from './job.js';
import { clearList, initList, refresh as refreshList, startList, stopList } from './list.js';
import { initStats, refreshStats, resetStats, startStats } from './stats.js';
import { initSubmit } from './submit.js';

// A new view: the page starts at its top, and the focus at its heading (so a screen
// reader announces where the user is and Tab goes on from there).
function focusTop(heading) {
  window.scrollTo(0, 0);
  heading.focus({ preventScroll: true });
}

function route(byUser) {
  const m = /^#\/runs\/([^/?#]+)$/.exec(location.hash);
  if (m) {
    stopList();
    show($('list-view'), false);
    show($('job-view'), true);
    openJob(decodeURIComponent(m[1]));
    if (byUser) focusTop($('job-title'));
  } else {
    closeJob();
    document.title = 'runq';
    show($('job-view'), false);
    show($('list-view'), true);
    startList();
    if (byUser) focusTop($('list-title'));
  }
}

// The key changed (saved, forgotten or refused): nothing of the old key's may stay.
function keyChanged() {
  clearList();
  resetStats();
  route(false);
  refreshList();
  refreshStats();
}

function connection(ok) {
  const banner = $('banner');
  if (ok === !banner.hidden) {
    setText(banner, ok ? '' : 'Cannot reach the runq server. Retrying…');
    show(banner, !ok);
  }
}

// /health needs no key and says whether the rest does. Until it answers, retry.
async function health() {
  for (;;) {
    try {
      return await api.call('/health', { key: '' });
    } catch (e) {
      if (e.body && typeof e.body.auth_required === 'boolean') return e.body; // 503: unhealthy, but it answered
      connection(false);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

async function start() {
  api.setHooks({
    unauthorized: () => askForKey('The server refused the saved key (401 Unauthorized). Enter an API key.'),
    connection,
  });
  initAuth(keyChanged);
  initList();
  initJob();
  initStats();
  initSubmit((job) => {
    refreshList();
    refreshStats();
    location.hash = `#/runs/${encodeURIComponent(job.job_id)}`;
  });
  const info = await health();
  connection(true);
  api.auth.required = info.auth_required === true;
  setText($('server-info'), [`store ${info.store || '?'}`, info.node ? `node ${info.node}` : '']
    .filter(Boolean).join(' · '));
  updateAuth();
  route(false);
  startStats();
  window.addEventListener('hashchange', () => route(true));
}

start();
