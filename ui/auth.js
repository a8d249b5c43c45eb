// The API key form. Shown only when /health says auth_required and no key is saved. A
// key is tried (GET /stats) before it is saved, so a wrong one never reaches the pollers.

import { auth, call, forgetKey, getKey, saveKey } from './api.js';
import { $, setText, show } from './dom.js';

let changed = () => {};

export function initAuth(onKeyChange) {
  changed = onKeyChange;
  $('auth-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = $('api-key');
    const key = input.value.trim();
    if (!key) return;
    setText($('auth-msg'), 'Checking the key…');
    try {
      await call('/stats', { key });
    } catch (err) {
      setText($('auth-msg'), err.status === 401
        ? 'The server refused this key (401 Unauthorized). Enter a valid API key.'
        : `Could not check the key: ${err.status ? err.message : 'the server could not be reached'}.`);
      input.select();
      input.focus();
      return;
    }
    saveKey(key);
    input.value = '';
    setText($('auth-msg'), '');
    update();
    changed();
  });
  $('forget-key').addEventListener('click', () => {
    forgetKey();
    setText($('auth-msg'), '');
    update();
    changed();
  });
}

// Asks for a key again (the saved one was refused), saying why.
export function askForKey(reason) {
  forgetKey();
  setText($('auth-msg'), reason);
  update();
  changed();
}

// Shows the key form or the "key saved" note, and the dashboard only when it can work.
export function update() {
  const needKey = auth.required && !getKey();
  show($('auth'), needKey);
  show($('key-saved'), auth.required && !needKey);
  show($('dashboard'), !needKey);
  if (needKey && document.activeElement !== $('api-key')) $('api-key').focus();
}
