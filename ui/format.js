// How times, durations and job fields read on the page.

const pad = (n) => String(n).padStart(2, '0');

// "2026-12-02 17:03:44" in the viewer's local time; '' for null.
export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
         `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds - m * 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

// Seconds between two timestamps; `to` null means now (a job still running).
export function secondsBetween(from, to) {
  if (!from) return null;
  const end = to ? Date.parse(to) : Date.now();
  return Math.max(0, (end - Date.parse(from)) / 1000);
}

export function shorten(text, max = 80) {
  const s = String(text).replace(/\s+/g, ' ').trim();
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

export function fmtPercent(p) {
  return typeof p === 'number' ? `${Math.round(p * 10) / 10}%` : '';
}

export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
export const STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
