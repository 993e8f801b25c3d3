/**
 * Forms from a transition's JSON Schema and `ui` hints: the controls, the
 * browser's checks (worded as WTForms words them) and the errors shown
 * next to their fields.
 *
 * @module statemgr/forms
 */

import { t, tn } from "./messages.js";

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

/** A new id for an element of the page, unique to this client. */
export function nextId() {
  sequence += 1;
  return `statemgr-${sequence}`;
}

/** Whether every field of a form schema has a control this client renders. */
export function formSupported(schema, ui) {
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

export function renderFields(doc, schema, ui) {
  const required = new Set(schema.required || []);
  return Object.entries(schema.properties || {}).map(([name, prop]) =>
    renderField(doc, name, prop, ui[name] || {}, required.has(name)),
  );
}

function renderField(doc, name, prop, hint, required) {
  const widget = widgetOf(prop, hint);
  const id = nextId();
  const wrapper = doc.createElement("div");
  wrapper.className = "statemgr-field";
  wrapper.dataset.field = name;
  const choices = choicesOf(prop.type === "array" ? prop.items : prop) || [];
  const field = { name, prop, hint, widget, choices, required, wrapper, controls: [], focusable: null, error: null };

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
      control.append(option(doc, "", required ? t("Choose…") : "—"));
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
export function readForm(fields) {
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
    const messages = validate(field.prop, data[field.name], field.required, field.hint);
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
      if (control.validity.badInput) return { bad: t("Not a valid number.") };
      return { value: control.value === "" ? undefined : Number(control.value) };
    case "date":
    case "datetime-local":
    case "time":
      if (control.validity.badInput) return { bad: t(`Not a valid ${widget === "date" ? "date" : widget === "time" ? "time" : "datetime"} value.`) };
      return { value: control.value === "" ? undefined : wireDate(widget, control.value) };
    default:
      return { value: control.value };
  }
}

/**
 * The messages of the rules the schema states that `value` breaks, worded
 * as WTForms words them, so the browser and the server say the same thing.
 */
function validate(prop, value, required, hint = {}) {
  const patterns = typeof value === "string" ? patternsOf(prop) : [];
  const missing =
    value === undefined || value === null || value === "" ||
    (Array.isArray(value) && value.length === 0) ||
    (prop.type === "boolean" && prop.const === true && value !== true) ||
    (prop.not && "const" in prop.not && value === prop.not.const) ||
    // DataRequired's non-blank pattern
    (required && typeof value === "string" && !value.trim() && patterns.some((p) => !p.test(value)));
  if (missing) return required ? [t("This field is required.")] : [];
  const messages = [];
  if (typeof value === "string") {
    // Python counts code points, not UTF-16 units.
    const length = [...value].length;
    // A required string's minLength 1 is the requirement, not a Length rule.
    const min = prop.minLength > (required ? 1 : 0) ? prop.minLength : 0;
    const max = prop.maxLength;
    if ((min && length < min) || (max !== undefined && length > max)) messages.push(lengthMessage(min, max, "character"));
    for (const pattern of patterns) {
      // a Regexp's own message, else WTForms' default for a pattern
      if (!pattern.test(value)) messages.push(hint["ui:options"]?.patternMessage || t("Invalid input."));
    }
  }
  if (typeof value === "number") {
    // WTForms then has no value, which its NumberRange refuses as well.
    const integerless = prop.type === "integer" && !Number.isInteger(value);
    if (integerless) messages.push(t("Not a valid integer value."));
    const { minimum: low, maximum: high } = prop;
    const bounded = low !== undefined || high !== undefined;
    if ((integerless && bounded) || (low !== undefined && value < low) || (high !== undefined && value > high)) {
      if (low !== undefined && high !== undefined) messages.push(t("Number must be between %(min)s and %(max)s.", { min: low, max: high }));
      else if (low !== undefined) messages.push(t("Number must be at least %(min)s.", { min: low }));
      else messages.push(t("Number must be at most %(max)s.", { max: high }));
    }
  }
  if (Array.isArray(value)) {
    const min = prop.minItems || 0;
    const max = prop.maxItems;
    if (value.length < min || (max !== undefined && value.length > max)) messages.push(lengthMessage(min, max, "choice"));
  }
  const choices = choicesOf(prop);
  if (choices && !Array.isArray(value) && !choices.some((c) => c.value === value)) messages.push(t("Not a valid choice."));
  if (prop.not?.enum?.includes(value)) messages.push(t("Invalid value, can't be any of: %(values)s.", { values: prop.not.enum.join(", ") }));
  return messages;
}

function lengthMessage(min, max, unit) {
  if (unit === "character") {
    // WTForms' Length, in its words (and so its translations)
    if (min && max !== undefined) return t("Field must be between %(min)d and %(max)d characters long.", { min, max });
    if (min) return tn("Field must be at least %(min)d character long.", "Field must be at least %(min)d characters long.", min, { min });
    return tn("Field cannot be longer than %(max)d character.", "Field cannot be longer than %(max)d characters.", max, { max });
  }
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
export function showFieldErrors(fields, errors) {
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

export function focusFirstError(fields) {
  fields.find((f) => f.wrapper.classList.contains("statemgr-invalid"))?.focusable?.focus();
}
