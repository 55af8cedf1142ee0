// One control per latent code, built from the model's spec (GET /models). Each code kind knows how
// to build its control, its default value and how to read a value from a URL; the page never
// branches on kinds elsewhere.

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

const fmt = (v) => (Math.round(v * 100) / 100).toFixed(2);
let uid = 0;

/** Slider range: the prior [low, high] widened to twice its half-width (±2 for a [-1, 1] prior). */
export function continuousRange(code) {
  const low = code.low ?? -1;
  const high = code.high ?? 1;
  const mid = (low + high) / 2;
  const half = (high - low) / 2;
  // the service accepts up to three half-widths (±3 for [-1, 1]); the typed field may go there
  return { low, high, min: mid - 2 * half, max: mid + 2 * half, hardMin: mid - 3 * half, hardMax: mid + 3 * half, mid };
}

export const KINDS = {
  categorical: {
    defaultValue: () => 0,
    coerce: (code, v) => Math.min(code.categories - 1, Math.max(0, Math.round(v))),
    sweep: (code) => ({ cols: code.categories }),
    build(code, value, onChange) {
      const labels = code.labels && code.labels.length === code.categories ? code.labels : Array.from({ length: code.categories }, (_, i) => String(i));
      const id = `code-${++uid}`;
      const group = el("div", { class: "cat-group", role: "group", "aria-label": code.name, id });
      const buttons = labels.map((label, i) =>
        el("button", {
          type: "button", class: "cat", "aria-pressed": "false", "data-index": String(i), title: `${code.name} = ${label}`,
          text: label, onclick: () => onChange(code.name, i, "commit"),
        }));
      group.append(...buttons);
      // one row up to 6 short labels, otherwise two even rows (10 digits: 2 × 5); word labels ("T-shirt/top",
      // "Ankle boot") get 3 columns, or 2 when long, so no label is cut off in the side panel
      const longest = Math.max(...labels.map((l) => l.length));
      const cols = longest > 12 ? 2 : longest > 3 ? 3 : code.categories <= 6 ? code.categories : Math.ceil(code.categories / 2);
      group.style.setProperty("--cat-cols", String(Math.min(cols, code.categories)));
      const set = (v) => buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(i === v)));
      set(value);
      const root = el("fieldset", { class: "code code-cat", "data-code": code.name },
        el("legend", {}, el("span", { class: "code-name", text: code.name }),
          el("span", { class: "code-meta", text: `${code.categories} categories` })),
        group);
      return { root, set, focusTarget: group };
    },
  },
  continuous: {
    defaultValue: (code) => continuousRange(code).mid,
    coerce: (code, v) => {
      const r = continuousRange(code);
      return Math.min(r.hardMax, Math.max(r.hardMin, v));
    },
    sweep: (code) => {
      const r = continuousRange(code);
      return { low: r.min, high: r.max };
    },
    build(code, value, onChange) {
      const r = continuousRange(code);
      const id = `code-${++uid}`;
      const pct = (v) => `${(((v - r.min) / (r.max - r.min)) * 100).toFixed(2)}%`;
      const caption = el("span", { class: "code-meta", id: `${id}-desc`,
        text: `${code.label ? `${code.label} · ` : ""}prior [${r.low}, ${r.high}]` });
      const slider = el("input", {
        type: "range", id, min: String(r.min), max: String(r.max), step: "0.01", value: String(value),
        "aria-label": code.name, "aria-describedby": `${id}-desc`, class: "slider",
      });
      slider.style.setProperty("--prior-from", pct(r.low));
      slider.style.setProperty("--prior-to", pct(r.high));
      const number = el("input", {
        type: "number", class: "num", min: String(r.hardMin), max: String(r.hardMax), step: "0.05",
        value: fmt(value), "aria-label": `${code.name} value`, inputmode: "decimal",
      });
      const setFill = (v) => slider.style.setProperty("--value", pct(Math.min(r.max, Math.max(r.min, v))));
      slider.addEventListener("input", () => {
        number.value = fmt(slider.valueAsNumber);
        setFill(slider.valueAsNumber);
        onChange(code.name, slider.valueAsNumber, "input");
      });
      slider.addEventListener("change", () => onChange(code.name, slider.valueAsNumber, "commit"));
      number.addEventListener("change", () => {
        const v = Number.parseFloat(number.value);
        if (!Number.isFinite(v)) return;
        onChange(code.name, KINDS.continuous.coerce(code, v), "commit");
      });
      const set = (v) => {
        slider.value = String(v);
        if (document.activeElement !== number) number.value = fmt(v);
        setFill(v);
      };
      set(value);
      const root = el("div", { class: "code code-cont", "data-code": code.name },
        el("div", { class: "code-head" },
          el("label", { for: id }, el("span", { class: "code-name", text: code.name })), caption, number),
        el("div", { class: "track" }, slider,
          el("div", { class: "ticks", "aria-hidden": "true" },
            el("span", { text: String(r.min) }), el("span", { text: String(r.mid) }), el("span", { text: String(r.max) }))));
      return { root, set, focusTarget: slider };
    },
  },
};

export function kindOf(code) {
  const kind = KINDS[code.type];
  if (!kind) throw new Error(`unknown code type "${code.type}" for code "${code.name}"`);
  return kind;
}

/** The spec's codes with defaults filled in and URL values coerced into range. */
export function normalizeCodes(codes, values) {
  const out = {};
  for (const code of codes) {
    const kind = kindOf(code);
    out[code.name] = code.name in values ? kind.coerce(code, values[code.name]) : kind.defaultValue(code);
  }
  return out;
}

/** Two models can be compared when their codes are the same list of names, kinds and sizes. */
export function sameCodeSpec(a, b) {
  const key = (m) => JSON.stringify(m.codes.map((c) => [c.name, c.type, c.categories ?? null, c.low ?? null, c.high ?? null]));
  return key(a) === key(b) && a.noise?.dim === b.noise?.dim;
}

export function buildControls(container, codes, values, onChange) {
  container.replaceChildren();
  const controls = {};
  for (const code of codes) {
    const control = kindOf(code).build(code, values[code.name], onChange);
    container.append(control.root);
    controls[code.name] = control;
  }
  return controls;
}
