/**
 * Following changes: the event stream (Server-Sent Events), with polling
 * of the events endpoint where the stream is refused or keeps failing,
 * tried again with a growing delay; polling backs off while the page is
 * hidden or the server unreachable.
 *
 * @module statemgr/events
 */

const MAX_POLL_INTERVAL = 30000;
// A stream that failed this many times in a row without a message is given
// up for polling; it is tried again after STREAM_RETRY ms, doubling.
const STREAM_FAILURES = 3;
const STREAM_RETRY = 15000;
const MAX_STREAM_RETRY = 300000;

/**
 * Adds following changes to a client class. The class provides
 * `events(after)`, `_query(selector)` (the page's elements) and
 * `_changed(key)` (re-render an object and its dependents).
 * @param {Function} Base
 */
export const Following = (Base) => class extends Base {
  /**
   * @param {object} [options]
   * @param {number} [options.pollInterval=1000]
   * @param {boolean} [options.stream=true]
   * @param {typeof EventSource} [options.EventSource]
   */
  constructor(options = {}) {
    super(options);
    const { pollInterval = 1000, stream = true, EventSource: EventSourceClass = globalThis.EventSource } = options;
    this.pollInterval = pollInterval;
    this.stream = stream && typeof EventSourceClass === "function";
    this._EventSource = EventSourceClass;
    this._source = null;
    this._streamFailures = 0;
    this._streamRetry = STREAM_RETRY;
    this._streamTimer = null;
    this._cursor = null;
    this._performed = new Set();
    this._running = false;
    this._stopped = false;
    this._timer = null;
    this._polling = false;
    this._pollNow = false;
    this._delay = pollInterval;
    this._onVisibility = () => this._visibilityChanged();
  }

  /**
   * Keep the page in sync: follow the event stream, or poll the events
   * endpoint where the stream is unavailable.
   */
  start() {
    if (this._running) return;
    this._running = true;
    this._stopped = false;
    this._delay = this.pollInterval;
    this.document.addEventListener("visibilitychange", this._onVisibility);
    if (this._streamable()) this._openStream();
    else this._schedule(this.pollInterval);
  }

  /** A stream is worth a connection once the page shows objects. */
  _streamable() {
    return this.stream && this._streamTimer === null && this._query("[data-statemgr]").length > 0;
  }

  /**
   * Stop polling. Called while the auto-started client is still rendering
   * the page, it also keeps that client from starting.
   */
  stop() {
    this._running = false;
    this._stopped = true;
    clearTimeout(this._timer);
    this._timer = null;
    this._closeStream();
    clearTimeout(this._streamTimer);
    this._streamTimer = null;
    this.document.removeEventListener("visibilitychange", this._onVisibility);
  }

  _schedule(delay) {
    clearTimeout(this._timer);
    if (this._running && !this._source) this._timer = setTimeout(() => this._poll(), delay);
  }

  /**
   * Follow the stream from the page's cursor. The browser reconnects by
   * itself after a dropped connection, sending the last event id, so
   * nothing is missed or applied twice.
   */
  _openStream() {
    const query = this._cursor === null ? "" : `?after=${encodeURIComponent(this._cursor)}`;
    const source = new this._EventSource(`${this.prefix}/events/stream${query}`);
    this._source = source;
    clearTimeout(this._timer);
    source.onopen = () => {
      this._streamFailures = 0;
    };
    source.onmessage = (message) => {
      this._streamFailures = 0;
      this._streamRetry = STREAM_RETRY;
      const event = JSON.parse(message.data);
      this._cursor = event.cursor;
      this._apply([event]).catch(() => {});
    };
    source.onerror = () => {
      // Refused (503 when the server holds no more streams, 404 on an
      // older server): closed for good. Or failing again and again.
      this._streamFailures += 1;
      if (source.readyState !== this._EventSource.CLOSED && this._streamFailures < STREAM_FAILURES) return;
      this._closeStream();
      this._schedule(0);
      this._streamTimer = setTimeout(() => this._retryStream(), this._streamRetry);
      this._streamRetry = Math.min(this._streamRetry * 2, MAX_STREAM_RETRY);
    };
  }

  _retryStream() {
    this._streamTimer = null;
    if (!this._running) return;
    this._streamFailures = 0;
    // a poll in flight keeps its own cursor moving; the stream starts from
    // where the page is now
    clearTimeout(this._timer);
    this._openStream();
  }

  _closeStream() {
    if (!this._source) return;
    this._source.close();
    this._source = null;
  }

  async _poll() {
    // elements came (htmx), or the stream may be tried again
    if (this._streamable()) {
      this._openStream();
      return;
    }
    let failed = false;
    this._polling = true;
    try {
      if (!this._query("[data-statemgr]").length) {
        // Nothing to keep in sync; elements added later are fetched fresh.
        this._cursor = null;
      } else if (this._cursor === null) {
        this._cursor = (await this.events()).cursor;
      } else {
        const { events, cursor } = await this.events(this._cursor);
        this._cursor = cursor;
        await this._apply(events);
      }
    } catch (error) {
      failed = true;
    }
    this._polling = false;
    // Back off while nobody looks at the page or the server is unreachable.
    const slow = failed || this.document.hidden;
    this._delay = slow ? Math.min(this._delay * 2, MAX_POLL_INTERVAL) : this.pollInterval;
    // The page became visible during this poll: catch up at once.
    const now = this._pollNow && !slow;
    this._pollNow = false;
    this._schedule(now ? 0 : this._delay);
  }

  async _apply(events) {
    const keys = new Set();
    for (const event of events) {
      // Our own transitions are already on the page.
      if (this._performed.delete(event.id)) continue;
      keys.add(`${event.model}:${event.object_id}`);
    }
    await Promise.all([...keys].map((key) => this._changed(key)));
  }

  _visibilityChanged() {
    if (!this._running || this.document.hidden) return;
    this._delay = this.pollInterval;
    // a stream kept the page in sync while it was hidden; polling catches up
    if (this._polling) this._pollNow = true;
    else this._schedule(0);
    this.schema({ revalidate: true }).catch(() => {});
  }
};

/**
 * Whether the feed position `a` comes before `b`. A cursor is
 * `"<transaction>.<record id>"` (or a bare record id, an older form); the
 * earliest one an object was read at is where the page must start.
 */
export function cursorBefore(a, b) {
  const parts = (c) => String(c).split(".").map(BigInt);
  const [x, y] = [parts(a), parts(b)];
  if (x.length !== y.length) return x.length < y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] < y[i];
  return false;
}
