// A minimal EventSource for Node (which has none before 22, and none
// without a flag there), on fetch, for the SDK's SSE tests: the WHATWG
// parsing rules (data/id/retry fields, comments, a blank line dispatches,
// one space after the colon dropped), reconnection after `retry` ms with
// the Last-Event-ID header, and a non-200 answer or a wrong content type
// closing it for good (readyState CLOSED, then `error`), as browsers do.
export class NodeEventSource {
  static all = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.onmessage = null;
    this.onerror = null;
    this.onopen = null;
    this.lastEventId = '';
    this.retry = 100;
    this.abort = null;
    NodeEventSource.all.push(this);
    void this.run();
  }

  close() {
    this.readyState = 2;
    this.abort?.abort();
  }

  // Cuts the current response (a proxy timing out): the source reconnects.
  cut() {
    this.abort?.abort();
  }

  async run() {
    while (this.readyState !== 2) {
      this.abort = new AbortController();
      try {
        const headers = { accept: 'text/event-stream' };
        if (this.lastEventId) headers['last-event-id'] = this.lastEventId;
        const res = await fetch(this.url, { headers, signal: this.abort.signal });
        if (res.status !== 200 || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
          await res.text().catch(() => {});
          this.readyState = 2;
          this.onerror?.({});
          return;
        }
        this.readyState = 1;
        this.onopen?.({});
        await this.read(res.body);
      } catch {
        // cut: reconnect below
      }
      if (this.readyState === 2) return;
      this.readyState = 0;
      this.onerror?.({});
      await new Promise((r) => setTimeout(r, this.retry));
    }
  }

  async read(body) {
    const decoder = new TextDecoder();
    let buf = '';
    let data = [];
    let id = null;
    for await (const chunk of body) {
      if (this.readyState === 2) return;
      buf += decoder.decode(chunk, { stream: true });
      let nl;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          if (id !== null) this.lastEventId = id;
          if (data.length && this.readyState !== 2) this.onmessage?.({ data: data.join('\n'), lastEventId: this.lastEventId });
          data = [];
          id = null;
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const name = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (name === 'data') data.push(value);
        else if (name === 'id') id = value;
        else if (name === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
      }
    }
  }
}
