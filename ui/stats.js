// Counts by status (GET /stats) and recent throughput. The server keeps no history of
// finished jobs per interval, so the page makes its own: each sample's rise in
// succeeded+failed+cancelled since the previous sample counts as "finished" in the
// 2-second bucket it was seen in. (A job deleted in the same second hides one finish:
// the chart is a sketch, not an audit.)

import { call, every } from './api.js';
import { $, h, setText, svg } from './dom.js';
import { STATUSES, fmtTime } from './format.js';

const BUCKET_MS = 2000;
const BUCKETS = 30; // one minute
const W = 300;
const H = 80;

let previous = null; // finished count at the last sample
const buckets = new Map(); // bucket number (Date.now() / BUCKET_MS) -> jobs finished
const counts = {}; // status -> <strong>
let poller = null;

export function initStats() {
  const list = $('counts');
  for (const name of [...STATUSES, 'total']) {
    counts[name] = h('strong');
    const label = name === 'total' ? h('span', {}, 'total')
      : h('span', { class: 'status', 'data-status': name }, name);
    list.append(h('li', {}, label, ' ', counts[name]));
  }
  draw();
}

export function startStats() {
  if (!poller) poller = every(1000, load);
}

export function refreshStats() {
  if (poller) poller.now();
}

// Forgets counts and samples (the key changed: other jobs, other counts).
export function resetStats() {
  previous = null;
  buckets.clear();
  for (const el of Object.values(counts)) setText(el, '');
  draw();
}

async function load() {
  let stats;
  try {
    stats = await call('/stats');
  } catch {
    return; // the banner (no connection) or the key form (401) says why
  }
  const by = stats.by_status || {};
  for (const name of STATUSES) setText(counts[name], by[name] ?? 0);
  setText(counts.total, stats.total_jobs ?? '');
  const finished = (by.succeeded || 0) + (by.failed || 0) + (by.cancelled || 0);
  if (previous !== null && finished > previous) {
    const b = Math.floor(Date.now() / BUCKET_MS);
    buckets.set(b, (buckets.get(b) || 0) + finished - previous);
  }
  previous = finished;
  draw();
}

function draw() {
  const chart = $('chart');
  const now = Math.floor(Date.now() / BUCKET_MS);
  for (const b of buckets.keys()) if (b <= now - BUCKETS) buckets.delete(b);
  const values = [];
  for (let i = BUCKETS - 1; i >= 0; i -= 1) values.push([now - i, buckets.get(now - i) || 0]);
  const peak = Math.max(1, ...values.map(([, n]) => n));
  const slot = W / BUCKETS;
  const parts = [svg('line', { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: 'axis' })];
  values.forEach(([b, n], i) => {
    if (!n) return;
    const height = Math.max(2, ((H - 12) * n) / peak);
    const bar = svg('rect', { x: i * slot + 1, y: H - 1 - height, width: slot - 2, height,
                              class: 'bar' });
    const title = svg('title');
    title.textContent = `${n} finished at ${fmtTime(new Date(b * BUCKET_MS).toISOString())}`;
    bar.append(title);
    parts.push(bar);
  });
  const total = values.reduce((sum, [, n]) => sum + n, 0);
  if (total) {
    const peakLabel = svg('text', { x: W - 2, y: 10, class: 'peak' });
    peakLabel.textContent = `max ${peak}`;
    parts.push(peakLabel);
  }
  chart.replaceChildren(...parts);
  setText($('chart-summary'), previous === null ? 'Waiting for the first sample…'
    : `${total} finished in the last minute.`);
}
