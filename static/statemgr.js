/**
 * statemgr.js — the browser client of flask_statemgr (DESIGN §9).
 *
 * An ES module with no dependency and no build step. The page marks the
 * objects it shows; the client fetches their state for the current user
 * and renders their transitions, so the frontend never keeps its own copy
 * of the rules.
 *
 * Loading it with the extension's template helper starts it on the page:
 *
 *     {{ statemgr_csrf_meta() }}   <meta name="csrf-token" ...>
 *     {{ statemgr_script() }}      <script type="module" src=".../statemgr.js"
 *                                          data-prefix="/_statemgr" data-autostart>
 *
 * The started client is `window.statemgr`. Attributes on the script tag:
 * `data-prefix`, `data-hide-unavailable`, `data-poll-interval` (ms), set by
 * `statemgr_script(nonce=None, *, autostart=True, hide_unavailable=False,
 * poll_interval=None)`.
 *
 * Markup:
 *
 *     <article data-statemgr="project:12" data-statemgr-depends="user:3">
 *       <h2 data-statemgr-label></h2>          object label (str(obj))
 *       <span data-statemgr-badge="state"></span>   title of the current state
 *       <div data-statemgr-transitions="state review"></div>
 *       <p data-statemgr-message></p>
 *     </article>
 *
 * - `data-statemgr="<model>:<id>"`: the exposed model name and object id.
 *   The element gets `data-<manager>="<current state name>"` for each
 *   manager (`data-state="LIVE"`), for styling.
 * - `data-statemgr-badge="<manager>"` (default `state`): filled with the
 *   current state's title; gets `data-current` and `data-state`.
 * - `data-statemgr-transitions`: where the buttons go, optionally limited to
 *   the listed managers. Without it a `div.statemgr-transitions` is added.
 * - `data-statemgr-message`: where refusals are shown (added if missing).
 * - `data-statemgr-depends="<model>:<id> ..."`: refresh this element too
 *   when those objects change (a session whose transitions require its
 *   project's state).
 * - `data-statemgr-hide-unavailable`: hide, rather than disable, the
 *   transitions the user cannot perform now.
 *
 * Events (bubbling, on the object's element):
 * - `statemgr:transition`, detail `{model, id, manager, transition, result, object}`
 * - `statemgr:error`, detail `{model, id, manager, transition, problem}`
 *   (`problem` is the RFC 9457 document; status 0 for a network failure)
 * - `statemgr:update`, detail `{model, id, object}`, after an element is
 *   re-rendered, whatever the cause.
 *
 * Every string from the server is inserted as text, never as HTML.
 *
 * @module statemgr
 */

const DEFAULT_PREFIX = "/_statemgr";
const MAX_POLL_INTERVAL = 30000;
// A stream that failed this many times in a row without a message is given
// up for polling; it is tried again after STREAM_RETRY ms, doubling.
const STREAM_FAILURES = 3;
const STREAM_RETRY = 15000;
const MAX_STREAM_RETRY = 300000;
const CONFIRMATION = "confirmation-required";

// Input types that render as a plain <input>: what a transition's `ui`
// hints name (react-jsonschema-form's `ui:widget`, or `ui:inputType`).
const INPUT_TYPES = new Set([
  "text", "email", "url", "tel", "search", "password", "number", "range",
  "date", "datetime-local", "time", "month", "week", "color", "hidden",
]);
const UI_WIDGETS = {
  text: "text", password: "password", hidden: "hidden", range: "range", email: "email",
  uri: "url", color: "color", date: "date", "date-time": "datetime-local", time: "time",
  updown: "number",
};
const FORMAT_INPUTS = { date: "date", "date-time": "datetime-local" };

let sequence = 0;

/** A refused request: `problem` is the RFC 9457 document. */
export class StateError extends Error {
  /** @param {object} problem */
  constructor(problem) {
    super(problem.detail || problem.title || `HTTP ${problem.status}`);
    this.name = "StateError";
    this.problem = problem;
    this.status = problem.status;
  }
}

/**
 * The client: requests against the JSON API, and the page binding.
 *
 *     import { StateClient } from "/_statemgr/static/statemgr.js";
 *     const client = new StateClient({ prefix: "/_statemgr" });
 *     await client.mount(document);
 *     client.start();
 */
export class StateClient {
  /**
   * @param {object} [options]
   * @param {string} [options.prefix="/_statemgr"] the extension's URL prefix.
   * @param {boolean} [options.hideUnavailable=false] hide transitions the
   *   user cannot perform instead of showing them disabled with the reason.
   * @param {number} [options.pollInterval=1000] ms between event polls while
   *   the page is visible; it doubles (up to 30 s) while hidden or failing.
   * @param {boolean} [options.stream=true] follow changes through the event
   *   stream (Server-Sent Events) where the server offers it, polling only
   *   where it does not.
   * @param {typeof EventSource} [options.EventSource] the EventSource class.
   * @param {typeof fetch} [options.fetch] the fetch function to use.
   * @param {Document} [options.document] the document to work in.
   */
  constructor({
    prefix = DEFAULT_PREFIX,
    hideUnavailable = false,
    pollInterval = 1000,
    stream = true,
    EventSource: EventSourceClass = globalThis.EventSource,
    fetch: fetchFn = globalThis.fetch.bind(globalThis),
    document: doc = globalThis.document,
  } = {}) {
    this.prefix = prefix.replace(/\/+$/, "");
    this.hideUnavailable = hideUnavailable;
    this.pollInterval = pollInterval;
    this.stream = stream && typeof EventSourceClass === "function";
    this.document = doc;
    this._EventSource = EventSourceClass;
    this._source = null;
    this._streamFailures = 0;
    this._streamRetry = STREAM_RETRY;
    this._streamTimer = null;
    this._fetch = fetchFn;
    this._schema = null;
    this._etag = null;
    this._schemaRequest = null;
    this._objects = new Map();
    this._roots = new Map();
    this._cursor = null;
    this._performed = new Set();
    this._running = false;
    this._stopped = false;
    this._timer = null;
    this._polling = false;
    this._pollNow = false;
    this._delay = pollInterval;
    this._onClick = (event) => this._click(event);
    this._onVisibility = () => this._visibilityChanged();
  }

  // -- the JSON API -------------------------------------------------------

  /**
   * The state model (DESIGN §8). Fetched once, then kept; `revalidate`
   * asks the server again with `If-None-Match`, which costs a 304 when it
   * did not change. The ETag and body are kept in sessionStorage so the
   * next page revalidates instead of downloading it again, one copy per
   * page language (`<html lang>`): the schema's titles are translated and
   * each locale's representation has its own ETag.
   * @param {{revalidate?: boolean}} [options]
   * @returns {Promise<object>}
   */
  async schema({ revalidate = false } = {}) {
    if (this._schema && !revalidate) return this._schema;
    if (!this._schemaRequest) {
      this._schemaRequest = this._loadSchema().finally(() => {
        this._schemaRequest = null;
      });
    }
    return this._schemaRequest;
  }

  async _loadSchema() {
    const lang = this.document?.documentElement?.lang || "";
    const storageKey = `statemgr:schema:${this.prefix}:${lang}`;
    if (!this._schema) {
      const stored = readStorage(storageKey);
      if (stored) {
        this._schema = stored.body;
        this._etag = stored.etag;
      }
    }
    const headers = { Accept: "application/json" };
    if (this._schema && this._etag) headers["If-None-Match"] = this._etag;
    const response = await this._send("GET", "/schema", undefined, headers);
    if (response.status === 304 && this._schema) return this._schema;
    const body = await response.json();
    this._schema = body;
    this._etag = response.headers.get("ETag");
    if (this._etag) writeStorage(storageKey, { etag: this._etag, body });
    return body;
  }

  /**
   * An object's states and, for the current user, every transition with
   * `available`, `status`, `reasons`, `form` and (for a cascade) `changes`.
   * @param {string} model the exposed model name.
   * @param {string|number} id
   * @returns {Promise<object>}
   */
  async object(model, id) {
    return this._json("GET", objectPath(model, id));
  }

  /**
   * Perform a transition. Resolves to the object JSON with `result`;
   * rejects with a {@link StateError} (401, 403, 404, 409, 422, ...).
   * @param {string} model
   * @param {string|number} id
   * @param {string} manager the manager's attribute name (`state`).
   * @param {string} transition
   * @param {object} [data] the form's fields.
   * @param {{confirm?: boolean}} [options] `confirm` a cascade.
   * @returns {Promise<object>}
   */
  async perform(model, id, manager, transition, data = {}, { confirm = false } = {}) {
    const body = { ...data };
    if (confirm) body.confirm = true;
    const path = `${objectPath(model, id)}/${encodeURIComponent(manager)}/${encodeURIComponent(transition)}`;
    return this._json("POST", path, body);
  }

  /**
   * The transitions after `after` that the user may see:
   * `{events: [...], cursor}`. Without `after`, no events and the current
   * cursor.
   * @param {string|null} [after]
   * @returns {Promise<{events: object[], cursor: string}>}
   */
  async events(after = null) {
    const query = after === null || after === undefined ? "" : `?after=${encodeURIComponent(after)}`;
    return this._json("GET", `/events${query}`);
  }

  /**
   * An object's history records, oldest first.
   * @returns {Promise<{records: object[]}>}
   */
  async history(model, id) {
    return this._json("GET", `${objectPath(model, id)}/history`);
  }

  async _json(method, path, body) {
    const response = await this._send(method, path, body, { Accept: "application/json" });
    return response.json();
  }

  /** Fetch, turning every failure into a StateError with a problem. */
  async _send(method, path, body, headers) {
    const init = { method, headers: { ...headers }, credentials: "same-origin" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (method !== "GET") {
      const token = this.document.querySelector('meta[name="csrf-token"]');
      if (token) init.headers["X-CSRFToken"] = token.content;
    }
    let response;
    try {
      response = await this._fetch(this.prefix + path, init);
    } catch (error) {
      throw new StateError({
        type: "about:blank", title: "Network error", status: 0,
        detail: "The server could not be reached. Check your connection and try again.",
        reasons: [], cause: String(error),
      });
    }
    if (response.ok || response.status === 304) return response;
    throw new StateError(await problemOf(response));
  }

  // -- the page -----------------------------------------------------------

  /**
   * Render every `[data-statemgr]` element under `root` (and `root` itself),
   * handle clicks on their buttons, and render elements added later (htmx
   * swaps) as they appear.
   * @param {Document|Element} [root]
   */
  async mount(root = this.document) {
    // Inside a mounted root, elements are already handled.
    if (![...this._roots.keys()].some((r) => r.contains(root))) {
      root.addEventListener("click", this._onClick);
      const observer = new MutationObserver((records) => this._added(records));
      observer.observe(root, { childList: true, subtree: true });
      this._roots.set(root, observer);
    }
    const keys = new Set(elementsUnder(root).map((el) => el.dataset.statemgr));
    // Forms need it: load it while the objects load.
    if (keys.size) this.schema().catch(() => {});
    const objects = await Promise.all([...keys].map((key) => this._refreshKey(key)));
    if (this._cursor === null) {
      const cursors = objects.filter(Boolean).map((obj) => obj.cursor);
      if (cursors.length) this._cursor = cursors.reduce((a, b) => (cursorBefore(b, a) ? b : a));
    }
  }

  /** Stop handling `root`'s elements (and stop polling if it was the last). */
  unmount(root = this.document) {
    const observer = this._roots.get(root);
    if (!observer) return;
    observer.disconnect();
    this._roots.delete(root);
    root.removeEventListener("click", this._onClick);
    if (!this._roots.size) this.stop();
  }

  /**
   * Fetch an object again and re-render every element showing it.
   * @returns {Promise<object|null>} the object, or null if it is gone.
   */
  async refresh(model, id) {
    return this._refreshKey(`${model}:${id}`);
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

  /** Refresh an object shown on the page, and the elements depending on it. */
  async _changed(key) {
    const keys = new Set();
    if (this._elements(key).length) keys.add(key);
    for (const el of this._dependents(key)) keys.add(el.dataset.statemgr);
    await Promise.all([...keys].map((k) => this._refreshKey(k)));
  }

  async _refreshKey(key) {
    const [model, id] = splitKey(key);
    let obj;
    try {
      obj = await this.object(model, id);
    } catch (error) {
      if (!(error instanceof StateError)) throw error;
      if (error.status === 404) {
        this._objects.delete(key);
        for (const el of this._elements(key)) this._renderMissing(el);
        return null;
      }
      // Left to the app (the page may just be offline for a moment).
      for (const el of this._elements(key)) {
        this._dispatch(el, "statemgr:error", { model, id, manager: null, transition: null, problem: error.problem });
      }
      return null;
    }
    this._render(obj);
    return obj;
  }

  _added(records) {
    const keys = new Set();
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (node.nodeType === 1) for (const el of elementsUnder(node)) keys.add(el.dataset.statemgr);
      }
    }
    for (const key of keys) this._refreshKey(key).catch(console.error);
  }

  _elements(key) {
    const selector = `[data-statemgr="${cssEscape(key)}"]`;
    return this._query(selector);
  }

  _dependents(key) {
    return this._query(`[data-statemgr][data-statemgr-depends~="${cssEscape(key)}"]`);
  }

  _query(selector) {
    const found = new Set();
    for (const root of this._roots.keys()) {
      if (root.matches?.(selector)) found.add(root);
      for (const el of root.querySelectorAll(selector)) found.add(el);
    }
    return [...found];
  }

  // -- rendering ----------------------------------------------------------

  _render(obj) {
    const key = `${obj.model}:${obj.id}`;
    this._objects.set(key, obj);
    for (const el of this._elements(key)) {
      this._renderElement(el, obj);
      this._dispatch(el, "statemgr:update", { model: obj.model, id: obj.id, object: obj });
    }
  }

  _renderElement(el, obj) {
    const doc = this.document;
    el.removeAttribute("data-statemgr-missing");
    for (const [name, manager] of Object.entries(obj.managers)) {
      el.setAttribute(`data-${name}`, manager.current);
    }
    for (const label of el.querySelectorAll("[data-statemgr-label]")) label.textContent = obj.label;
    for (const badge of el.querySelectorAll("[data-statemgr-badge]")) {
      const manager = obj.managers[badge.dataset.statemgrBadge || "state"];
      if (!manager) continue;
      badge.textContent = manager.title || manager.current;
      badge.dataset.current = manager.current;
      badge.dataset.state = manager.state;
    }

    const hide = this.hideUnavailable || el.hasAttribute("data-statemgr-hide-unavailable");
    for (const container of this._containers(el)) {
      const only = (container.dataset.statemgrTransitions || "").split(/\s+/).filter(Boolean);
      const focused = container.contains(doc.activeElement) ? doc.activeElement.dataset.statemgrTransition : null;
      const buttons = [];
      for (const [managerName, manager] of Object.entries(obj.managers)) {
        if (only.length && !only.includes(managerName)) continue;
        for (const [name, entry] of Object.entries(manager.transitions)) {
          if (!entry.available && hide) continue;
          buttons.push(this._button(managerName, name, entry));
        }
      }
      container.classList.add("statemgr-transitions");
      container.replaceChildren(...buttons);
      if (focused) container.querySelector(`[data-statemgr-transition="${cssEscape(focused)}"]`)?.focus();
    }
  }

  _button(managerName, name, entry) {
    const button = this.document.createElement("button");
    button.type = "button";
    button.className = "statemgr-button";
    button.dataset.statemgrTransition = `${managerName}.${name}`;
    button.textContent = entry.title || name;
    if (!entry.available) {
      const reason = entry.reasons.map((r) => r.message).join("\n");
      button.disabled = true;
      button.classList.add("statemgr-unavailable");
      button.title = reason;
      button.dataset.reason = reason;
    }
    return button;
  }

  /** The element's transition containers, excluding nested objects' ones. */
  _containers(el) {
    const own = [...el.querySelectorAll("[data-statemgr-transitions]")].filter(
      (c) => c.parentElement.closest("[data-statemgr]") === el,
    );
    if (own.length) return own;
    const container = this.document.createElement("div");
    container.className = "statemgr-transitions";
    container.setAttribute("data-statemgr-transitions", "");
    el.append(container);
    return [container];
  }

  _renderMissing(el) {
    el.setAttribute("data-statemgr-missing", "");
    for (const container of this._containers(el)) container.replaceChildren();
  }

  _messageArea(el) {
    const own = [...el.querySelectorAll("[data-statemgr-message]")].find(
      (m) => m.parentElement.closest("[data-statemgr]") === el,
    );
    if (own) return own;
    const area = this.document.createElement("div");
    area.className = "statemgr-message";
    area.setAttribute("data-statemgr-message", "");
    el.append(area);
    return area;
  }

  _dispatch(el, type, detail) {
    const target = el.isConnected ? el : this.document;
    target.dispatchEvent(new CustomEvent(type, { bubbles: true, composed: true, detail }));
  }

  // -- performing ---------------------------------------------------------

  _click(event) {
    const button = event.target.closest?.("button[data-statemgr-transition]");
    if (!button || button.disabled) return;
    const el = button.closest("[data-statemgr]");
    if (!el) return;
    event.preventDefault();
    const [manager, transition] = button.dataset.statemgrTransition.split(".");
    this.open(el, manager, transition).catch((error) => console.error(error));
  }

  /**
   * Start a transition from an element, as a click on its button does:
   * open its form or ask for confirmation of a cascade, else perform it.
   * @param {Element} el an element with `data-statemgr`.
   */
  async open(el, manager, transition) {
    const key = el.dataset.statemgr;
    const [model, id] = splitKey(key);
    const obj = this._objects.get(key) || (await this.object(model, id));
    const entry = obj.managers[manager]?.transitions[transition];
    if (!entry) return;
    const form = entry.form ? await this._formSchema(model, manager, transition) : null;
    if (form && !formSupported(form.schema, form.ui)) {
      // Fields this client cannot render: the server's own page can.
      const path = [model, id, manager, transition].map(encodeURIComponent).join("/");
      const next = encodeURIComponent(location.pathname + location.search);
      location.assign(`${this.prefix}/pages/${path}?next=${next}`);
      return;
    }
    const changes = totalChanges(entry.changes);
    if (form || changes > 1) {
      this._dialog(el, obj, manager, transition, entry, form, entry.changes);
      return;
    }
    this._clearMessage(el);
    el.setAttribute("aria-busy", "true");
    try {
      await this._perform(el, manager, transition, {}, false);
    } catch (error) {
      if (!(error instanceof StateError)) throw error;
      if (isConfirmation(error.problem)) {
        this._dialog(el, obj, manager, transition, entry, null, error.problem.plan);
      } else {
        this._refused(el, manager, transition, error.problem);
      }
    } finally {
      el.removeAttribute("aria-busy");
    }
  }

  _clearMessage(el) {
    const area = el.querySelector("[data-statemgr-message]");
    if (area) fillMessage(this.document, area, null);
  }

  /** The transition's form: its JSON Schema and its `ui` hints, or null. */
  async _formSchema(model, manager, transition) {
    const find = (schema) => {
      const managerClass = schema.models[model]?.managers[manager];
      return schema.managers[managerClass]?.transitions[transition];
    };
    let found = find(await this.schema());
    // A stale schema may predate this transition: ask again once.
    if (found === undefined) found = find(await this.schema({ revalidate: true }));
    return found?.form ? { schema: found.form, ui: found.ui || {} } : null;
  }

  async _perform(el, manager, transition, data, confirm) {
    const [model, id] = splitKey(el.dataset.statemgr);
    const obj = await this.perform(model, id, manager, transition, data, { confirm });
    if (obj.result?.record) this._performed.add(obj.result.record.id);
    this._render(obj);
    await Promise.all(
      this._dependents(`${model}:${id}`).map((dep) => this._refreshKey(dep.dataset.statemgr)),
    );
    this._dispatch(el, "statemgr:transition", {
      model, id, manager, transition, result: obj.result, object: obj,
    });
    return obj;
  }

  _refused(el, manager, transition, problem, { inline = true } = {}) {
    const [model, id] = splitKey(el.dataset.statemgr);
    if (inline) fillMessage(this.document, this._messageArea(el), problem);
    this._dispatch(el, "statemgr:error", { model, id, manager, transition, problem });
    // A refusal usually means the page is out of date.
    if (problem.status !== 0) this._changed(el.dataset.statemgr).catch(console.error);
  }

  _dialog(el, obj, manager, transition, entry, form, changes) {
    const doc = this.document;
    const dialog = doc.createElement("dialog");
    dialog.className = "statemgr-dialog";
    const formEl = doc.createElement("form");
    formEl.className = "statemgr-form";
    formEl.noValidate = true;
    const heading = doc.createElement("h2");
    heading.id = `statemgr-${++sequence}`;
    heading.textContent = entry.title || transition;
    dialog.setAttribute("aria-labelledby", heading.id);
    const label = doc.createElement("p");
    label.className = "statemgr-object";
    label.textContent = obj.label;
    formEl.append(heading, label);

    const confirmText = doc.createElement("p");
    confirmText.className = "statemgr-confirm";
    let confirm = false;
    const askConfirmation = (plan) => {
      confirm = true;
      confirmText.textContent = describeChanges(entry.title || transition, plan);
      if (!confirmText.isConnected) label.after(confirmText);
    };
    if (totalChanges(changes) > 1) askConfirmation(changes);

    const fields = form ? renderFields(doc, form.schema, form.ui) : [];
    for (const field of fields) formEl.append(field.wrapper);

    const message = doc.createElement("div");
    message.className = "statemgr-message";
    message.setAttribute("role", "alert");
    const actions = doc.createElement("div");
    actions.className = "statemgr-actions";
    const submit = doc.createElement("button");
    submit.type = "submit";
    submit.className = "statemgr-button statemgr-primary";
    submit.textContent = entry.title || transition;
    const cancel = doc.createElement("button");
    cancel.type = "button";
    cancel.className = "statemgr-button statemgr-secondary";
    cancel.textContent = "Cancel";
    cancel.addEventListener("click", () => dialog.close());
    actions.append(submit, cancel);
    formEl.append(message, actions);
    dialog.append(formEl);

    formEl.addEventListener("submit", async (event) => {
      event.preventDefault();
      fillMessage(doc, message, null);
      const { data, errors } = readForm(fields);
      showFieldErrors(fields, errors);
      if (Object.keys(errors).length) {
        focusFirstError(fields);
        return;
      }
      submit.disabled = true;
      dialog.setAttribute("aria-busy", "true");
      try {
        await this._perform(el, manager, transition, data, confirm);
        dialog.close();
      } catch (error) {
        if (!(error instanceof StateError)) throw error;
        const problem = error.problem;
        if (isConfirmation(problem)) {
          askConfirmation(problem.plan);
        } else if (problem.status === 422 && problem.errors) {
          const unplaced = showFieldErrors(fields, problem.errors);
          focusFirstError(fields);
          if (unplaced.length) fillMessage(doc, message, { ...problem, detail: "", reasons: unplaced.map((m) => ({ message: m })) });
          this._dispatch(el, "statemgr:error", { model: obj.model, id: obj.id, manager, transition, problem });
        } else {
          fillMessage(doc, message, problem);
          this._refused(el, manager, transition, problem, { inline: false });
        }
      } finally {
        submit.disabled = false;
        dialog.removeAttribute("aria-busy");
      }
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      // Back to where the user was, if that button is still there.
      const again = el.querySelector(`[data-statemgr-transition="${cssEscape(`${manager}.${transition}`)}"]`);
      if (again && !again.disabled) again.focus();
    });

    doc.body.append(dialog);
    if (typeof dialog.showModal === "function") dialog.showModal();
    else dialog.setAttribute("open", "");
    (fields.find((f) => f.focusable)?.focusable || submit).focus();
    return dialog;
  }
}

// -- forms from JSON Schema ------------------------------------------------

/** Whether every field of a form schema has a control this client renders. */
function formSupported(schema, ui) {
  return Object.entries(schema.properties || {}).every(([name, prop]) => widgetOf(prop, ui[name]) !== null);
}

/**
 * The choices of a schema, `[{value, title}]`, from `oneOf: [{const, title}]`
 * (or an `enum`), or null.
 */
function choicesOf(prop) {
  if (Array.isArray(prop?.oneOf) && prop.oneOf.every((option) => "const" in option)) {
    return prop.oneOf.map((option) => ({ value: option.const, title: String(option.title ?? option.const) }));
  }
  if (Array.isArray(prop?.enum)) return prop.enum.map((value) => ({ value, title: String(value) }));
  return null;
}

/** The control for a field, or null when it has none (nested forms). */
function widgetOf(prop, hint = {}) {
  const widget = hint["ui:widget"];
  if (prop.type === "object") return null;
  if (prop.type === "array") {
    if (!choicesOf(prop.items)) return null;
    return widget === "checkboxes" ? "checkboxes" : "multiselect";
  }
  const choices = choicesOf(prop);
  // Choices computed at run time are not in the schema.
  if (widget === "select" || widget === "radio") return choices ? widget : null;
  if (choices) return "select";
  if (widget === "textarea") return widget;
  if (prop.type === "boolean") return "checkbox";
  const type = UI_WIDGETS[widget] || hint["ui:inputType"];
  if (type && INPUT_TYPES.has(type)) return type;
  if (prop.type === "integer" || prop.type === "number") return "number";
  return FORMAT_INPUTS[prop.format] || "text";
}

function renderFields(doc, schema, ui) {
  const required = new Set(schema.required || []);
  return Object.entries(schema.properties || {}).map(([name, prop]) =>
    renderField(doc, name, prop, ui[name] || {}, required.has(name)),
  );
}

function renderField(doc, name, prop, hint, required) {
  const widget = widgetOf(prop, hint);
  const id = `statemgr-${++sequence}`;
  const wrapper = doc.createElement("div");
  wrapper.className = "statemgr-field";
  wrapper.dataset.field = name;
  const choices = choicesOf(prop.type === "array" ? prop.items : prop) || [];
  const field = { name, prop, widget, choices, required, wrapper, controls: [], focusable: null, error: null };

  const title = prop.title || name;
  let label = null;
  if (widget !== "hidden") {
    label = doc.createElement(widget === "radio" || widget === "checkboxes" ? "span" : "label");
    label.className = "statemgr-label";
    label.textContent = title;
    if (required) {
      const mark = doc.createElement("span");
      mark.className = "statemgr-required";
      mark.setAttribute("aria-hidden", "true");
      mark.textContent = " *";
      label.append(mark);
    }
    if (label.tagName === "LABEL") label.htmlFor = id;
    else label.id = `${id}-label`;
  }

  let control;
  const defaultValue = prop.default;
  if (widget === "textarea") {
    control = doc.createElement("textarea");
    control.rows = 4;
    if (defaultValue !== undefined) control.value = String(defaultValue);
  } else if (widget === "select" || widget === "multiselect") {
    control = doc.createElement("select");
    control.multiple = widget === "multiselect";
    // A field left out takes its default, so with one there is no "none".
    if (!control.multiple && defaultValue === undefined) {
      control.append(option(doc, "", required ? "Choose…" : "—"));
    }
    const chosen = new Set((control.multiple ? defaultValue || [] : [defaultValue]).map(String));
    choices.forEach((choice, index) => {
      const opt = option(doc, String(index), choice.title);
      opt.selected = chosen.has(String(choice.value));
      control.append(opt);
    });
  } else if (widget === "radio" || widget === "checkboxes") {
    control = doc.createElement("div");
    control.className = "statemgr-choices";
    control.setAttribute("role", widget === "radio" ? "radiogroup" : "group");
    control.setAttribute("aria-labelledby", `${id}-label`);
    const chosen = new Set((widget === "radio" ? [defaultValue] : defaultValue || []).map(String));
    choices.forEach((choice, index) => {
      const item = doc.createElement("label");
      const input = doc.createElement("input");
      input.type = widget === "radio" ? "radio" : "checkbox";
      input.name = name;
      input.value = String(index);
      input.checked = chosen.has(String(choice.value));
      item.append(input, doc.createTextNode(` ${choice.title}`));
      control.append(item);
      field.controls.push(input);
    });
    field.focusable = field.controls[0] || null;
  } else {
    control = doc.createElement("input");
    control.type = widget === "checkbox" ? "checkbox" : widget;
    if (widget === "checkbox") control.checked = Boolean(defaultValue);
    else if (defaultValue !== undefined) control.value = inputValue(widget, String(defaultValue));
    if (widget === "number" || widget === "range") {
      control.step = prop.type === "integer" ? "1" : "any";
      if (typeof prop.minimum === "number") control.min = String(prop.minimum);
      if (typeof prop.maximum === "number") control.max = String(prop.maximum);
    }
  }
  if (!field.controls.length) {
    control.id = id;
    control.name = name;
    field.controls.push(control);
    field.focusable = widget === "hidden" ? null : control;
  }
  if (prop.readOnly) for (const c of field.controls) c.disabled = true;
  if (required) control.setAttribute("aria-required", "true");

  const error = doc.createElement("p");
  error.className = "statemgr-error";
  error.id = `${id}-error`;
  error.dataset.field = name;
  error.hidden = true;
  field.error = error;
  const described = [error.id];

  if (widget === "checkbox") {
    // A checkbox reads best with its label after it.
    label.prepend(control);
    label.removeAttribute("for");
    wrapper.classList.add("statemgr-checkbox");
    wrapper.append(label);
  } else if (label) {
    wrapper.append(label, control);
  } else {
    wrapper.append(control);
    wrapper.hidden = true;
  }
  if (prop.description) {
    const help = doc.createElement("small");
    help.id = `${id}-help`;
    help.textContent = prop.description;
    wrapper.append(help);
    described.unshift(help.id);
  }
  wrapper.append(error);
  control.setAttribute("aria-describedby", described.join(" "));
  return field;
}

function option(doc, value, text) {
  const opt = doc.createElement("option");
  opt.value = value;
  opt.textContent = text;
  return opt;
}

/** The form's data as the API wants it, and the errors the browser finds. */
function readForm(fields) {
  const data = {};
  const errors = {};
  for (const field of fields) {
    // The server takes a read-only field's value as it has it.
    if (field.prop.readOnly) continue;
    const { value, bad } = readField(field);
    if (bad) {
      errors[field.name] = [bad];
      continue;
    }
    if (value !== undefined) data[field.name] = value;
  }
  for (const field of fields) {
    if (errors[field.name] || field.prop.readOnly) continue;
    const messages = validate(field.prop, data[field.name], field.required);
    if (messages.length) errors[field.name] = messages;
  }
  return { data, errors };
}

function readField({ widget, choices, controls }) {
  const [control] = controls;
  switch (widget) {
    case "checkbox":
      return { value: control.checked };
    case "select":
      return { value: control.value === "" ? undefined : choices[Number(control.value)].value };
    case "multiselect":
      return { value: [...control.selectedOptions].map((o) => choices[Number(o.value)].value) };
    case "radio": {
      const checked = controls.find((c) => c.checked);
      return { value: checked ? choices[Number(checked.value)].value : undefined };
    }
    case "checkboxes":
      return { value: controls.filter((c) => c.checked).map((c) => choices[Number(c.value)].value) };
    case "number":
    case "range":
      if (control.validity.badInput) return { bad: "Not a valid number." };
      return { value: control.value === "" ? undefined : Number(control.value) };
    case "date":
    case "datetime-local":
    case "time":
      if (control.validity.badInput) return { bad: `Not a valid ${widget === "date" ? "date" : widget === "time" ? "time" : "datetime"} value.` };
      return { value: control.value === "" ? undefined : wireDate(widget, control.value) };
    default:
      return { value: control.value };
  }
}

/**
 * The messages of the rules the schema states that `value` breaks, worded
 * as WTForms words them, so the browser and the server say the same thing.
 */
function validate(prop, value, required) {
  const patterns = typeof value === "string" ? patternsOf(prop) : [];
  const missing =
    value === undefined || value === null || value === "" ||
    (Array.isArray(value) && value.length === 0) ||
    (prop.type === "boolean" && prop.const === true && value !== true) ||
    (prop.not && "const" in prop.not && value === prop.not.const) ||
    // DataRequired's non-blank pattern
    (required && typeof value === "string" && !value.trim() && patterns.some((p) => !p.test(value)));
  if (missing) return required ? ["This field is required."] : [];
  const messages = [];
  if (typeof value === "string") {
    // Python counts code points, not UTF-16 units.
    const length = [...value].length;
    // A required string's minLength 1 is the requirement, not a Length rule.
    const min = prop.minLength > (required ? 1 : 0) ? prop.minLength : 0;
    const max = prop.maxLength;
    if ((min && length < min) || (max !== undefined && length > max)) messages.push(lengthMessage(min, max, "character"));
    for (const pattern of patterns) {
      if (!pattern.test(value)) messages.push("Invalid input.");
    }
  }
  if (typeof value === "number") {
    // WTForms then has no value, which its NumberRange refuses as well.
    const integerless = prop.type === "integer" && !Number.isInteger(value);
    if (integerless) messages.push("Not a valid integer value.");
    const { minimum: low, maximum: high } = prop;
    const bounded = low !== undefined || high !== undefined;
    if ((integerless && bounded) || (low !== undefined && value < low) || (high !== undefined && value > high)) {
      if (low !== undefined && high !== undefined) messages.push(`Number must be between ${low} and ${high}.`);
      else if (low !== undefined) messages.push(`Number must be at least ${low}.`);
      else messages.push(`Number must be at most ${high}.`);
    }
  }
  if (Array.isArray(value)) {
    const min = prop.minItems || 0;
    const max = prop.maxItems;
    if (value.length < min || (max !== undefined && value.length > max)) messages.push(lengthMessage(min, max, "choice"));
  }
  const choices = choicesOf(prop);
  if (choices && !Array.isArray(value) && !choices.some((c) => c.value === value)) messages.push("Not a valid choice.");
  if (prop.not?.enum?.includes(value)) messages.push(`Invalid value, can't be any of: ${prop.not.enum.join(", ")}.`);
  return messages;
}

function lengthMessage(min, max, unit) {
  const plural = (n) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (min && max !== undefined) return `Field must be between ${min} and ${max} ${unit}s long.`;
  if (min) return `Field must be at least ${plural(min)} long.`;
  return `Field cannot be longer than ${plural(max)}.`;
}

const patternCache = new Map();

// The server writes every pattern so that ECMA-262 with the u flag (as JSON
// Schema validators use it) reads it as Python does.
function patternsOf(prop) {
  const sources = [prop.pattern, ...(prop.allOf || []).map((p) => p.pattern)].filter(Boolean);
  return sources.map((source) => {
    if (!patternCache.has(source)) patternCache.set(source, new RegExp(source, "u"));
    return patternCache.get(source);
  });
}

const pad = (n) => String(n).padStart(2, "0");

/**
 * An HTML date/time input's value as the schema has it: a datetime-local
 * value becomes RFC 3339 with the browser's offset at that time, e.g.
 * "2024-05-01T14:30:00+02:00"; a time drops fractions of a second.
 */
function wireDate(widget, value) {
  if (widget === "time") return value.slice(0, 8);
  const m = /^(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value);
  if (widget !== "datetime-local" || !m) return value;
  const [, y, mo, d, h, mi, s = "00"] = m;
  const local = new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const offset = -local.getTimezoneOffset();
  const sign = offset < 0 ? "-" : "+";
  return `${y}-${mo}-${d}T${h}:${mi}:${s}${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
}

/** A schema default in the shape an HTML input takes. */
function inputValue(widget, text) {
  if (widget !== "datetime-local") return text;
  // RFC 3339 with an offset, shown in the browser's time.
  const when = new Date(text);
  if (Number.isNaN(when.getTime())) return text;
  const seconds = when.getSeconds() ? `:${pad(when.getSeconds())}` : "";
  return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}T${pad(when.getHours())}:${pad(when.getMinutes())}${seconds}`;
}

/** Show errors next to their fields; returns the messages with no field. */
function showFieldErrors(fields, errors) {
  const byName = new Map(fields.map((f) => [f.name, f]));
  for (const field of fields) {
    field.error.textContent = "";
    field.error.hidden = true;
    field.wrapper.classList.remove("statemgr-invalid");
    for (const c of field.controls) c.removeAttribute("aria-invalid");
  }
  const unplaced = [];
  for (const [name, messages] of Object.entries(errors)) {
    // Nested errors ("address.city") belong to their top-level field.
    const field = byName.get(name.split(".")[0]);
    if (!field) {
      unplaced.push(...messages);
      continue;
    }
    field.error.textContent = [field.error.textContent, ...messages].filter(Boolean).join(" ");
    field.error.hidden = false;
    field.wrapper.classList.add("statemgr-invalid");
    for (const c of field.controls) c.setAttribute("aria-invalid", "true");
  }
  return unplaced;
}

function focusFirstError(fields) {
  fields.find((f) => f.wrapper.classList.contains("statemgr-invalid"))?.focusable?.focus();
}

// -- helpers ---------------------------------------------------------------

/** A problem's reasons (or detail) as text in `area`; null clears it. */
function fillMessage(doc, area, problem) {
  area.replaceChildren();
  area.hidden = !problem;
  area.classList.toggle("statemgr-error-message", Boolean(problem));
  if (!problem) return;
  area.setAttribute("role", "alert");
  const messages = (problem.reasons || []).map((r) => r.message).filter(Boolean);
  if (!messages.length) messages.push(problem.detail || problem.title || `Error ${problem.status}`);
  if (messages.length === 1) {
    area.textContent = messages[0];
    return;
  }
  const list = doc.createElement("ul");
  for (const text of messages) {
    const item = doc.createElement("li");
    item.textContent = text;
    list.append(item);
  }
  area.append(list);
}

async function problemOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: a proxy's error page, say.
  }
  if (body && typeof body === "object") return { status: response.status, reasons: [], ...body };
  return {
    type: "about:blank", title: response.statusText || `HTTP ${response.status}`,
    status: response.status, detail: "", reasons: [],
  };
}

function isConfirmation(problem) {
  return problem.status === 409 && typeof problem.type === "string" && problem.type.endsWith(CONFIRMATION);
}

function totalChanges(changes) {
  return Object.values(changes || {}).reduce((sum, n) => sum + n, 0);
}

function describeChanges(title, changes) {
  const parts = Object.entries(changes || {}).map(([model, n]) => `${n} ${model}`);
  return `${title} changes ${totalChanges(changes)} objects (${parts.join(", ")}). Continue?`;
}

function objectPath(model, id) {
  return `/objects/${encodeURIComponent(model)}/${encodeURIComponent(id)}`;
}

function splitKey(key) {
  const at = key.indexOf(":");
  return [key.slice(0, at), key.slice(at + 1)];
}

function elementsUnder(root) {
  const found = root.matches?.("[data-statemgr]") ? [root] : [];
  return found.concat([...root.querySelectorAll("[data-statemgr]")]);
}

function cssEscape(value) {
  return globalThis.CSS?.escape ? CSS.escape(value) : value.replace(/["\\]/g, "\\$&");
}

/**
 * Whether the feed position `a` comes before `b`. A cursor is
 * `"<transaction>.<record id>"` (or a bare record id, an older form); the
 * earliest one an object was read at is where the page must start.
 */
function cursorBefore(a, b) {
  const parts = (c) => String(c).split(".").map(BigInt);
  const [x, y] = [parts(a), parts(b)];
  if (x.length !== y.length) return x.length < y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] < y[i];
  return false;
}

function readStorage(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) || "null");
  } catch {
    return null;
  }
}

function writeStorage(key, value) {
  try {
    sessionStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or disabled: the schema is simply fetched again.
  }
}

// -- auto-start ------------------------------------------------------------

function autostart() {
  if (typeof document === "undefined") return;
  const tag = [...document.querySelectorAll("script[type=module][src]")].find(
    (s) => s.src === import.meta.url,
  );
  if (!tag || !tag.hasAttribute("data-autostart")) return;
  const interval = Number(tag.dataset.pollInterval);
  const client = new StateClient({
    prefix: tag.dataset.prefix || new URL("..", import.meta.url).pathname,
    hideUnavailable: tag.hasAttribute("data-hide-unavailable"),
    pollInterval: interval > 0 ? interval : 1000,
  });
  window.statemgr = client;
  // Start polling once the page is rendered, unless the app has stopped
  // the client in the meantime.
  const begin = () => {
    if (!client._stopped) client.start();
  };
  const run = () => {
    client.mount(document).then(begin, begin);
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run, { once: true });
  else run();
}

autostart();
