// DOM helpers. Every value a job carries goes into the page as text (append of a string
// makes a text node, textContent for updates): the page never parses data as markup.

export const $ = (id) => document.getElementById(id);

// h('td', {class: 'x'}, 'text', otherNode): an element with attributes and children.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) el.append(child);
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

// An SVG element; its attributes are geometry (x, y, width...), never style.
export function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  return el;
}

// Writes only when the text differs, so a poll that changed nothing changes no DOM
// (no flicker, no lost text selection, no needless screen-reader announcements).
export function setText(el, text) {
  const s = text === null || text === undefined ? '' : String(text);
  if (el.textContent !== s) el.textContent = s;
}

export function show(el, visible) {
  el.hidden = !visible;
}
