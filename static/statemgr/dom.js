/**
 * The page binding of flask_statemgr: `data-statemgr` elements rendered
 * with their states and transition buttons, clicks performed (through a
 * form dialog or a confirmation where needed), and the DOM events
 * `statemgr:transition`, `statemgr:error` and `statemgr:update`.
 *
 * @module statemgr/dom
 */

import { ApiClient, StateError, isConfirmation, objectPath } from "./client.js";
import { Following, cursorBefore } from "./events.js";
import { focusFirstError, formSupported, nextId, readForm, renderFields, showFieldErrors } from "./forms.js";
import { t } from "./messages.js";

// The reason code of a transition refused because of the current state
// (`Reason.code`, DESIGN §8).
const STATE_REASON = "state";

/**
 * The client: requests against the JSON API, and the page binding.
 *
 *     import { StateClient } from "/_statemgr/static/statemgr.js";
 *     const client = new StateClient({ prefix: "/_statemgr" });
 *     await client.mount(document);
 *     client.start();
 */
export class StateClient extends Following(ApiClient) {
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
  constructor(options = {}) {
    super(options);
    const { hideUnavailable = false } = options;
    this.hideUnavailable = hideUnavailable;
    this._objects = new Map();
    this._roots = new Map();
    this._onClick = (event) => this._click(event);
  }

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
    // The object's main state has no way out (a deleted project): what no
    // one can do from here collapses into one line, instead of a row of
    // disabled buttons all saying so.
    const main = obj.managers.state || Object.values(obj.managers)[0];
    const final = main !== undefined && Object.values(main.transitions).every(refusedByState);
    this._containers(el).forEach((container, index) => {
      const only = (container.dataset.statemgrTransitions || "").split(/\s+/).filter(Boolean);
      const focused = container.contains(doc.activeElement) ? doc.activeElement.dataset.statemgrTransition : null;
      const items = [];
      if (final && index === 0) items.push(this._finalNotice(main));
      for (const [managerName, manager] of Object.entries(obj.managers)) {
        if (only.length && !only.includes(managerName)) continue;
        for (const [name, entry] of Object.entries(manager.transitions)) {
          if (!entry.available && (hide || (final && refusedByState(entry)))) continue;
          items.push(this._action(managerName, name, entry));
        }
      }
      container.classList.add("statemgr-transitions");
      container.replaceChildren(...items);
      if (focused) container.querySelector(`[data-statemgr-transition="${cssEscape(focused)}"]`)?.focus();
    });
  }

  /**
   * A transition's button; an unavailable one comes with its reason as
   * visible text beside it (a tooltip alone is out of reach on a touch
   * screen), which also describes the button to screen readers.
   */
  _action(managerName, name, entry) {
    const doc = this.document;
    const button = doc.createElement("button");
    button.type = "button";
    button.className = "statemgr-button";
    button.dataset.statemgrTransition = `${managerName}.${name}`;
    button.textContent = entry.title || name;
    if (entry.available) return button;
    const reason = entry.reasons.map((r) => r.message).join("\n");
    button.disabled = true;
    button.classList.add("statemgr-unavailable");
    button.title = reason;
    button.dataset.reason = reason;
    const action = doc.createElement("span");
    action.className = "statemgr-action";
    const text = doc.createElement("small");
    text.className = "statemgr-reason";
    text.id = nextId();
    text.textContent = reason;
    button.setAttribute("aria-describedby", text.id);
    action.append(button, text);
    return action;
  }

  _finalNotice(manager) {
    const notice = this.document.createElement("p");
    notice.className = "statemgr-final";
    notice.setAttribute("data-statemgr-final", "");
    notice.textContent = t("%(state)s: nothing more can be done.", { state: manager.title || manager.current });
    return notice;
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
    heading.id = nextId();
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
    cancel.textContent = t("Cancel");
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

/**
 * Whether a transition is refused because of the current state alone, so
 * that no one can perform it now, whatever their roles.
 */
function refusedByState(entry) {
  return !entry.available && entry.reasons.length > 0 && entry.reasons.every((r) => r.code === STATE_REASON);
}

/** A problem's reasons (or detail) as text in `area`; null clears it. */
function fillMessage(doc, area, problem) {
  area.replaceChildren();
  area.hidden = !problem;
  area.classList.toggle("statemgr-error-message", Boolean(problem));
  if (!problem) return;
  area.setAttribute("role", "alert");
  const messages = (problem.reasons || []).map((r) => r.message).filter(Boolean);
  if (!messages.length) messages.push(problem.detail || problem.title || t("Error %(status)s", { status: problem.status }));
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

function totalChanges(changes) {
  return Object.values(changes || {}).reduce((sum, n) => sum + n, 0);
}

function describeChanges(title, changes) {
  const parts = Object.entries(changes || {}).map(([model, n]) => `${n} × ${model}`);
  return t("%(title)s changes %(num)s objects (%(parts)s). Continue?", { title, num: totalChanges(changes), parts: parts.join(", ") });
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
