// Server-Sent Events read with fetch(), not EventSource: EventSource cannot send an
// Authorization header, and the key must never go into a URL.

// Parses the text/event-stream format (WHATWG HTML, "Parsing an event stream") from
// chunks of text; calls onEvent({event, id, data}) for each complete event.
export class SSEParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.lastEventId = '';
    this.afterCR = false;
    this.reset();
  }

  reset() {
    this.event = '';
    this.data = [];
    this.id = null;
  }

  push(chunk) {
    if (!chunk) return;
    // A CR that ended the previous chunk ended its line; a LF right after it is the
    // rest of that CRLF, not an empty line.
    if (this.afterCR) {
      this.afterCR = false;
      if (chunk[0] === '\n') chunk = chunk.slice(1);
    }
    const buf = this.buffer + chunk;
    let start = 0;
    let from = this.buffer.length; // the kept part has no line end: scan only the new text
    for (;;) {
      const end = lineEnd(buf, from);
      if (end < 0) break;
      this.line(buf.slice(start, end));
      let next = end + 1;
      if (buf[end] === '\r') {
        if (next === buf.length) this.afterCR = true;
        else if (buf[next] === '\n') next += 1;
      }
      start = next;
      from = next;
    }
    this.buffer = buf.slice(start);
  }

  line(text) {
    if (text === '') {
      if (this.id !== null) this.lastEventId = this.id;
      if (this.data.length) {
        this.onEvent({ event: this.event || 'message', id: this.id, data: this.data.join('\n') });
      }
      this.reset();
      return;
    }
    if (text[0] === ':') return; // a comment
    const colon = text.indexOf(':');
    const name = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    if (name === 'event') this.event = value;
    else if (name === 'data') this.data.push(value);
    else if (name === 'id' && !value.includes('\0')) this.id = value;
    // `retry` and unknown fields: not needed here (the page picks its own delay).
  }
}

// The first CR or LF at or after `from`, or -1.
function lineEnd(s, from) {
  const lf = s.indexOf('\n', from);
  const cr = s.indexOf('\r', from);
  if (lf < 0) return cr;
  return cr < 0 ? lf : Math.min(lf, cr);
}

// Reads a fetch() Response of an event stream to its end, calling onEvent per event.
// Resolves when the server ends the stream; rejects (AbortError) when `signal` aborts.
export async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SSEParser(onEvent);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(decoder.decode(value, { stream: true }));
    }
    parser.push(decoder.decode());
  } finally {
    reader.releaseLock();
  }
}
