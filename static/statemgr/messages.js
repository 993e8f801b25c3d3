/**
 * The client's own words in the page's language. `statemgr_script()` puts
 * their translations for the request's locale on the script tag
 * (`data-messages`, only those that differ from English); without it the
 * client speaks English.
 *
 * @module statemgr/messages
 */

const given = (() => {
  const tag = globalThis.document?.querySelector("script[data-messages]");
  try {
    return tag ? JSON.parse(tag.dataset.messages) : {};
  } catch {
    return {};
  }
})();

function fill(text, values) {
  return text.replace(/%\((\w+)\)[sd]/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** `text` translated, with `%(name)s` placeholders filled from `values`. */
export function t(text, values = {}) {
  const found = given[text];
  return fill(typeof found === "string" ? found : text, values);
}

/** The singular or plural of a message by `n` (as gettext's ngettext). */
export function tn(singular, plural, n, values = {}) {
  const found = given[singular];
  const forms = Array.isArray(found) ? found : [singular, plural];
  return fill(n === 1 ? forms[0] : forms[1], values);
}
