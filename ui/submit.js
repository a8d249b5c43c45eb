// The submit form: POST /api/v1/runs. Config is checked here (a JSON object) so a typo
// gets a clear message before any request; what only the server knows (its largest
// timeout, say) comes back as its 422 `detail`, shown as it is.

import { call } from './api.js';
import { $, h, setText, show } from './dom.js';

export function initSubmit(onCreated) {
  const form = $('submit-form');
  const config = $('config');
  config.addEventListener('input', () => configError(''));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = request();
    if (!body) return;
    const button = $('submit-button');
    button.disabled = true;
    message('Submitting…');
    try {
      const job = await call('/api/v1/runs', { method: 'POST', body });
      $('prompt').value = '';
      message('Submitted ', h('a', { href: `#/runs/${encodeURIComponent(job.job_id)}`, class: 'mono' }, job.job_id), '.');
      onCreated(job);
    } catch (err) {
      message(err.status ? `Not submitted (${err.status}): ${err.message}`
        : 'Not submitted: the server could not be reached.', true);
    } finally {
      button.disabled = false;
    }
  });
}

function message(...parts) {
  const el = $('submit-msg');
  const isError = parts.at(-1) === true;
  if (isError) parts.pop();
  el.classList.toggle('error', isError);
  el.replaceChildren(...parts);
}

function configError(text) {
  const el = $('config-msg');
  setText(el, text);
  show(el, text !== '');
  if (text) $('config').setAttribute('aria-invalid', 'true');
  else $('config').removeAttribute('aria-invalid');
}

// The request body from the form, or null (and a message) if config is not an object.
// Priority and timeout are checked by the browser (min, max, step) before this runs.
function request() {
  const body = { prompt: $('prompt').value };
  const priority = $('priority').value.trim();
  if (priority !== '') body.priority = Number(priority);
  const timeout = $('timeout').value.trim();
  if (timeout !== '') body.timeout = Number(timeout);
  const session = $('session-id').value.trim();
  if (session !== '') body.session_id = session;
  const text = $('config').value.trim();
  if (text !== '') {
    let config;
    try {
      config = JSON.parse(text);
    } catch (e) {
      return invalid(`Config is not valid JSON: ${e.message}`);
    }
    if (config === null || typeof config !== 'object' || Array.isArray(config)) {
      return invalid('Config must be a JSON object, like {"steps": 3}.');
    }
    body.config = config;
  }
  configError('');
  return body;
}

function invalid(text) {
  configError(text);
  message('');
  $('config').focus();
  return null;
}
