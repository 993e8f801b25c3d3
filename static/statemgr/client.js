/**
 * The HTTP client of flask_statemgr: the JSON API, with the state model
 * cached per locale (ETag, sessionStorage), the CSRF header on every POST
 * and every refusal turned into a {@link StateError} with its RFC 9457
 * problem.
 *
 * @module statemgr/client
 */

import { t } from "./messages.js";

const DEFAULT_PREFIX = "/_statemgr";
const CONFIRMATION = "confirmation-required";

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
 * Requests against the JSON API; {@link StateClient} adds the page.
 */
export class ApiClient {
  /**
   * @param {object} [options]
   * @param {string} [options.prefix="/_statemgr"] the extension's URL prefix.
   * @param {typeof fetch} [options.fetch] the fetch function to use.
   * @param {Document} [options.document] the document to work in.
   */
  constructor({
    prefix = DEFAULT_PREFIX,
    fetch: fetchFn = globalThis.fetch.bind(globalThis),
    document: doc = globalThis.document,
  } = {}) {
    this.prefix = prefix.replace(/\/+$/, "");
    this.document = doc;
    this._fetch = fetchFn;
    this._schema = null;
    this._etag = null;
    this._schemaRequest = null;
  }

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
        type: "about:blank", title: t("Network error"), status: 0,
        detail: t("The server could not be reached. Check your connection and try again."),
        reasons: [], cause: String(error),
      });
    }
    if (response.ok || response.status === 304) return response;
    throw new StateError(await problemOf(response));
  }
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

export function isConfirmation(problem) {
  return problem.status === 409 && typeof problem.type === "string" && problem.type.endsWith(CONFIRMATION);
}

export function objectPath(model, id) {
  return `/objects/${encodeURIComponent(model)}/${encodeURIComponent(id)}`;
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
