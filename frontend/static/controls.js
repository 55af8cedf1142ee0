// One control per latent code, built from what GET /models says about it: `code.control` (the widget and its
// numbers: choices, slider bounds, step, default) and `code.caption`. The page derives nothing: every behaviour
// that differs between codes (building, coercing, formatting, sweeping, digit keys, reading inferred codes) is a
// function of the WIDGETS table below, looked up by `control.widget`.

import { roundCode } from "./state.js";

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
};
export { el };

let uid = 0;
// decimals enough to show one slider step (1 for a step of 0.1, 2 for 0.05, …), and never fewer than 2: a value from
// a link or a typed one (-1.25) need not lie on the slider's steps and is shown as it is used
const decimals = (step) => Math.min(6, Math.max(2, Math.ceil(-Math.log10(step) - 1e-9)));
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const shownDecimals = (v) => (String(v).split(".")[1] ?? "").length;
const pct = (v, c) => `${(((clamp(v, c.min, c.max) - c.min) / (c.max - c.min)) * 100).toFixed(2)}%`;

/** A control for a code with a few named values: one toggle button per choice, one tab stop for the group. */
const choice = {
  coerce: (c, v) => clamp(Math.round(v), 0, c.choices.length - 1),
  format: (c, v) => c.choices[v] ?? String(v),
  // a traversal sweeps every choice: the column count is fixed, no bounds are sent
  sweep: (c) => ({ cols: c.choices.length }),
  sweepCaption: (name) => `every ${name} value`,
  shape: (c) => ["choice", c.choices.length],
  digit: (c, d) => (d < c.choices.length ? d : null),
  inferred(code, info) {
    const labels = code.control.choices;
    const bars = info.probabilities.map((p, i) => el("div", { class: `prob${i === info.value ? " best" : ""}`,
      role: "listitem", title: `${labels[i]}: ${(p * 100).toFixed(1)}%` },
    el("span", { class: "prob-label", text: labels[i] }),
    el("span", { class: "prob-bar", style: `--p:${(p * 100).toFixed(1)}%` }),
    el("span", { class: "prob-val", text: `${(p * 100).toFixed(0)}%` })));
    return [el("h4", { text: `${code.name}: ${labels[info.value]}` }),
      el("div", { class: "probs", role: "list", "aria-label": `${code.name} probabilities` }, ...bars)];
  },
  build(code, value, onChange) {
    const c = code.control;
    const labels = c.choices;
    const group = el("div", { class: "cat-group", role: "group", "aria-label": code.name, id: `code-${++uid}` });
    const buttons = labels.map((label, i) => el("button", {
      type: "button", class: "cat", "aria-pressed": "false", "data-index": String(i), title: `${code.name} = ${label}`,
      text: label, tabindex: "-1", onclick: () => onChange(code.name, i, "commit"),
    }));
    group.append(...buttons);
    // roving tabindex (WAI-ARIA toolbar pattern): the group is one tab stop, the arrow keys move within it
    group.addEventListener("keydown", (e) => {
      const i = buttons.indexOf(document.activeElement);
      if (i < 0) return;
      const cols = Number(group.style.getPropertyValue("--cat-cols")) || labels.length;
      const moves = { ArrowRight: 1, ArrowDown: cols, ArrowLeft: -1, ArrowUp: -cols, Home: -i, End: labels.length - 1 - i };
      if (!(e.key in moves)) return;
      e.preventDefault();
      const next = clamp(i + moves[e.key], 0, labels.length - 1);
      buttons.forEach((b, k) => { b.tabIndex = k === next ? 0 : -1; });
      buttons[next].focus();
    });
    // one row up to 6 short labels, otherwise two even rows (10 digits: 2 x 5); word labels ("T-shirt/top",
    // "Ankle boot") get 3 columns, or 2 when long, so no label is cut off in the side panel
    const longest = Math.max(...labels.map((l) => l.length));
    const n = labels.length;
    const cols = longest > 12 ? 2 : longest > 3 ? 3 : n <= 6 ? n : Math.ceil(n / 2);
    group.style.setProperty("--cat-cols", String(Math.min(cols, n)));
    const set = (v) => buttons.forEach((b, i) => {
      b.setAttribute("aria-pressed", String(i === v));
      // the tab stop follows the chosen value unless focus is inside the group (then the arrows own it)
      if (!group.contains(document.activeElement)) b.tabIndex = i === v ? 0 : -1;
    });
    set(value);
    const root = el("fieldset", { class: "code code-choice", "data-code": code.name },
      el("legend", {}, el("span", { class: "code-name", text: code.name }),
        el("span", { class: "code-meta", text: code.caption ?? "" })),
      group);
    return { root, set, focusTarget: group };
  },
};

/** A control for a code on a continuous range: a slider over [min, max] and a typed field up to the hard bounds. */
const range = {
  coerce: (c, v) => roundCode(clamp(v, c.hard_min, c.hard_max)),
  // the slider step's decimals, more where the value in use has them (1.234 is shown as 1.234, not 1.23)
  format: (c, v) => Number(v).toFixed(Math.max(decimals(c.step), shownDecimals(roundCode(v)))),
  sweep: (c) => ({ low: c.min, high: c.max }),
  sweepCaption: (name, first, last) => `${name} from ${first} to ${last}`,
  shape: (c) => ["range", c.min, c.max],
  digit: () => null,
  inferred(code, info) {
    const f = (v) => range.format(code.control, v);
    return [el("h4", { text: `${code.name}${code.label ? ` (${code.label})` : ""}: ${f(info.value)}` }),
      el("p", { class: "hint", text: `mean ${f(info.mean)} ± ${f(info.std)}` })];
  },
  build(code, value, onChange) {
    const c = code.control;
    const f = (v) => range.format(c, v);
    const id = `code-${++uid}`;
    const caption = el("span", { class: "code-meta", id: `${id}-desc`, text: code.caption ?? "" });
    // step = control.step: the arrow keys move by it (~40 presses end to end), PageUp/PageDown by 10 of it
    const slider = el("input", {
      type: "range", id, min: String(c.min), max: String(c.max), step: String(c.step), value: String(value),
      "aria-label": code.name, "aria-describedby": `${id}-desc`, class: "slider",
    });
    slider.style.setProperty("--prior-from", pct(c.prior[0], c));
    slider.style.setProperty("--prior-to", pct(c.prior[1], c));
    const number = el("input", {
      type: "number", class: "num", min: String(c.hard_min), max: String(c.hard_max), step: String(c.step),
      value: f(value), "aria-label": `${code.name} value`, inputmode: "decimal",
    });
    const setFill = (v) => slider.style.setProperty("--value", pct(v, c));
    slider.addEventListener("input", (e) => {
      number.value = f(slider.valueAsNumber);
      setFill(slider.valueAsNumber);
      // the event's own time: the input -> painted latency counts from it (benchmarks/browser_latency.py)
      onChange(code.name, slider.valueAsNumber, "input", e.timeStamp);
    });
    slider.addEventListener("change", () => onChange(code.name, slider.valueAsNumber, "commit"));
    slider.addEventListener("keydown", (e) => {
      // Chromium moves a range input by max(step, span/10) on PageUp/PageDown; ask for 10 steps on every browser
      const dir = { PageUp: 1, PageDown: -1 }[e.key];
      if (!dir) return;
      e.preventDefault();
      // from the value in use, which may lie beyond the slider (a link, a typed value, a reading; the range input
      // holds it clamped), and never against the key's direction: PageUp from 3 on a -2..2 slider once gave 2
      const next = clamp(current + dir * 10 * c.step, c.min, c.max);
      onChange(code.name, dir > 0 ? Math.max(current, next) : Math.min(current, next), "commit");
    });
    number.addEventListener("change", () => {
      const v = Number.parseFloat(number.value);
      // the field always ends up showing the value in use: a clamped one, or the previous one for junk
      onChange(code.name, Number.isFinite(v) ? range.coerce(c, v) : null, "commit");
    });
    let current = value;
    const set = (v) => {
      current = v;
      slider.value = String(v);
      // the value in use, for screen readers: the range input holds it clamped (a link's or a typed 3 on a -2..2
      // slider was read out as 2)
      slider.setAttribute("aria-valuetext", f(v));
      number.value = f(v);
      setFill(v);
    };
    set(value);
    const root = el("div", { class: "code code-range", "data-code": code.name },
      el("div", { class: "code-head" },
        el("label", { for: id }, el("span", { class: "code-name", text: code.name })), caption, number),
      el("div", { class: "track" }, slider,
        el("div", { class: "ticks", "aria-hidden": "true" },
          el("span", { text: f(c.min) }), el("span", { text: f((c.min + c.max) / 2) }), el("span", { text: f(c.max) }))));
    return { root, set, focusTarget: slider };
  },
};

export const WIDGETS = { choice, range };

export function widgetOf(code) {
  const widget = WIDGETS[code.control?.widget];
  if (!widget) throw new Error(`code "${code.name}": the server sent no control this page can show (${JSON.stringify(code.control)})`);
  return widget;
}

/** A code's value as text (a choice's label, a number to the slider's step). */
export const formatValue = (code, v) => widgetOf(code).format(code.control, v);

/** The spec's codes with defaults filled in and URL values coerced into range. */
export function normalizeCodes(codes, values) {
  const out = {};
  for (const code of codes) {
    const v = values[code.name];
    out[code.name] = Number.isFinite(v) ? widgetOf(code).coerce(code.control, v) : code.control.default;
  }
  return out;
}

/** Two models can be compared when their codes are the same list of names and widget shapes, on the same noise (its
 * size and distribution: one seed draws another z from another prior) and making pictures of one shape (the two
 * frames share one aspect ratio, the first model's). */
export function sameCodeSpec(a, b) {
  const key = (m) =>
    JSON.stringify([
      m.codes.map((c) => [c.name, ...widgetOf(c).shape(c.control)]),
      [m.noise?.dim, m.noise?.distribution],
      [m.image?.width, m.image?.height, m.image?.channels],
    ]);
  return key(a) === key(b);
}

export function buildControls(container, codes, values, onChange) {
  container.replaceChildren();
  const controls = {};
  for (const code of codes) {
    const control = widgetOf(code).build(code, values[code.name], onChange);
    container.append(control.root);
    controls[code.name] = control;
  }
  return controls;
}
