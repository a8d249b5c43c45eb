// Server-Sent Events read with fetch(), not EventSource: EventSource cannot send an
// Authorization header, and the key must never go into a URL.

// Parses the text/event-stream format (WHATWG HTML, "Parsing an event stream") from
// chunks of text; calls onEvent({event, id, data}) for each complete event.
export class SSEParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.lastEventId = '';
    this.reset();
  }

  reset() {
    this.event = '';
    this.data = [];
    this.id = null;
  }

  push(chunk) {
    this.buffer += chunk;
    let start = 0;
    for (;;) {
      const nl = this.buffer.slice(start).search(/[\r\n]/);
      if (nl < 0) break;
      const end = start + nl;
      // A CR at the very end may be the first half of CRLF: wait for the next chunk.
      if (this.buffer[end] === '\r' && end + 1 === this.buffer.length) break;
      this.line(this.buffer.slice(start, end));
      start = end + (this.buffer[end] === '\r' && this.buffer[end + 1] === '\n' ? 2 : 1);
    }
    this.buffer = this.buffer.slice(start);
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
