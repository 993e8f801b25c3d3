/**
 * statemgr.js — the browser client of flask_statemgr (DESIGN §9).
 *
 * ES modules with no dependency and no build step: this entry point
 * re-exports the public API and starts the client; `statemgr/client.js`
 * (HTTP), `statemgr/events.js` (following changes), `statemgr/dom.js` (the
 * page) and `statemgr/forms.js` (forms from JSON Schema) do the work. The page marks the
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
 * `statemgr_script(nonce=None, *, autostart=True, hide_unavailable=None,
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


import { StateClient } from "./statemgr/dom.js";

export { StateError } from "./statemgr/client.js";
export { StateClient };

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
