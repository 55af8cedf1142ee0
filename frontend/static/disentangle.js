// The Disentanglement view: for a model whose manifest's metrics hold `disentanglement` (data sets with ground-truth
// factors: dSprites, chairs3d; training/disentanglement.py `disentanglement_metrics`), the code x factor mutual
// information as a heatmap, the scores beside the published figures, and each code's best-matching factor (which
// also captions the sliders, unless the manifest labels the code itself).
import { el } from "./controls.js";

const SVG = "http://www.w3.org/2000/svg";

// Published figures on dSprites (FactorVAE score: majority-vote accuracy, Kim & Mnih 2018; MIG: Chen et al. 2018),
// each with where it comes from. Shown beside this model's own scores as the bars' tick marks.
export const ANCHORS = [
  { metric: "factor_vae", value: 0.59, model: "InfoGAN", source: "Lin et al., ICML 2020 (InfoGAN-CR), Table 1",
    url: "https://arxiv.org/abs/1906.06034" },
  { metric: "factor_vae", value: 0.88, model: "InfoGAN-CR", source: "Lin et al., ICML 2020, Table 1",
    url: "https://arxiv.org/abs/1906.06034" },
  { metric: "factor_vae", value: 0.92, model: "InfoGAN-CR + ModelCentrality", source: "Lin et al., ICML 2020, Table 1",
    url: "https://arxiv.org/abs/1906.06034" },
  { metric: "factor_vae", value: 0.82, model: "FactorVAE (a VAE)", source: "Kim & Mnih, ICML 2018",
    url: "https://arxiv.org/abs/1802.05983" },
  { metric: "mig", value: 0.35, model: "InfoGAN-CR", source: "Lin et al., ICML 2020, Table 1",
    url: "https://arxiv.org/abs/1906.06034" },
];
export const ANCHOR_DATASET = "dsprites";

// The scores shown, in order: [key, name, where in metrics.disentanglement, what it measures]
const SCORES = [
  ["factor_vae", "FactorVAE score", (d) => d.factor_vae?.score, "accuracy of a majority-vote classifier that names the fixed factor from the least-varying code (Kim & Mnih 2018)"],
  ["mig", "MIG", (d) => d.mig?.score, "mutual information gap: top two codes' MI with each factor, over its entropy (Chen et al. 2018)"],
  ["dci_d", "DCI disentanglement", (d) => d.dci?.disentanglement, "1 - entropy of each code's importance over the factors (Eastwood & Williams 2018)"],
  ["dci_c", "DCI completeness", (d) => d.dci?.completeness, "1 - entropy of each factor's importance over the codes"],
  ["dci_i", "DCI informativeness", (d) => d.dci?.informativeness_test, "held-out accuracy of the trees that predict the factors from the codes"],
  ["sap", "SAP", (d) => d.sap?.score, "separated attribute predictability: gap between the two codes that best predict each factor (Kumar et al. 2018)"],
];

export const disentanglementOf = (model) => {
  const d = model?.metrics?.disentanglement;
  return d && typeof d === "object" && Array.isArray(d.mi_matrix) ? d : null;
};

const fmt = (v, digits = 2) => (typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "–");

/** The model's codes with each caption led by the code's best-matching factor, unless the manifest labels the code
 * (its label is in the server's caption already and wins). */
export function withFactorCaptions(model) {
  const best = disentanglementOf(model)?.best_factor ?? {};
  return model.codes.map((code) => {
    const match = best[code.name];
    if (!match?.factor || code.label) return code;
    const caption = `≈ ${match.factor}${code.caption ? ` · ${code.caption}` : ""}`;
    return { ...code, caption, factor: match.factor };
  });
}

/** Colour of a cell: white (0) to the accent (1) over the normalised MI (MI / the factor's entropy, in [0, 1]). */
function cellColour(t) {
  const mix = Math.round(Math.max(0, Math.min(1, t)) * 100);
  return `color-mix(in srgb, var(--accent) ${mix}%, #ffffff)`;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  node.append(...children);
  return node;
}

/** codes x factors MI (nats) as an SVG heatmap: one <rect> per cell with its value in a <title> (hover). */
function heatmap(model, d) {
  const labelOf = (name) => model.codes.find((c) => c.name === name)?.label;
  const rows = d.codes ?? d.mi_matrix.map((_, i) => `c${i + 1}`);
  const cols = d.factors ?? [];
  const entropy = d.factor_entropy ?? {};
  const max = Math.max(1e-9, ...d.mi_matrix.flat().filter((v) => typeof v === "number"));
  const cell = 46;
  const left = 110;
  const top = 74;
  const width = left + cols.length * cell + 70; // room for the last column's slanted name
  const height = top + rows.length * cell + 4;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "heatmap", role: "img",
    "aria-label": `mutual information between ${rows.length} codes and ${cols.length} factors` });
  cols.forEach((f, j) => {
    const x = left + j * cell + cell / 2;
    root.append(svg("text", { x, y: top - 8, class: "hm-col", transform: `rotate(-40 ${x} ${top - 8})` }, f));
  });
  rows.forEach((code, i) => {
    const label = labelOf(code);
    const best = d.best_factor?.[code]?.factor;
    root.append(svg("text", { x: left - 8, y: top + i * cell + cell / 2 + 4, class: "hm-row" },
      label ? `${code} (${label})` : code));
    cols.forEach((f, j) => {
      const mi = d.mi_matrix[i]?.[j];
      const h = entropy[f];
      const t = typeof mi !== "number" ? 0 : h > 0 ? mi / h : mi / max;
      const title = typeof mi === "number"
        ? `${code} × ${f}: MI ${fmt(mi, 3)} nats${h > 0 ? ` (${fmt(100 * mi / h, 0)}% of ${f}'s entropy, ${fmt(h, 2)} nats)` : ""}`
        : `${code} × ${f}: undefined (the factor does not vary)`;
      const x = left + j * cell;
      const y = top + i * cell;
      const g = svg("g", { class: `hm-cell${best === f ? " best" : ""}${typeof mi === "number" ? "" : " undefined"}`,
        "data-code": code, "data-factor": f },
      svg("title", {}, title),
      svg("rect", { x: x + 1, y: y + 1, width: cell - 2, height: cell - 2, rx: 4, fill: typeof mi === "number" ? cellColour(t) : "#eef0f3" }),
      svg("text", { x: x + cell / 2, y: y + cell / 2 + 4, class: `hm-val${t > 0.55 ? " on-dark" : ""}` },
        typeof mi === "number" ? fmt(mi, 2) : "–"));
      root.append(g);
    });
  });
  return root;
}

/** One score: a 0..1 bar for this model (and the baseline's, when it has the metric), the anchors as ticks. */
function scoreRow([key, name, read, about], d, baseline) {
  const v = read(d);
  const b = baseline ? read(baseline.d) : undefined;
  const anchors = ANCHORS.filter((a) => a.metric === key);
  const pct = (x) => `${(Math.max(0, Math.min(1, x)) * 100).toFixed(1)}%`;
  const track = el("div", { class: "score-track", "aria-hidden": "true" },
    el("span", { class: "score-bar", style: `width:${typeof v === "number" ? pct(v) : "0%"}` }),
    ...(typeof b === "number" ? [el("span", { class: "score-base", style: `left:${pct(b)}`, title: `${baseline.title}: ${fmt(b)}` })] : []),
    ...anchors.map((a) => el("span", { class: "score-anchor", style: `left:${pct(a.value)}`, title: `${a.model}: ${fmt(a.value)} (${a.source})` })));
  const published = anchors.length
    ? anchors.map((a) => el("a", { class: "anchor", href: a.url, target: "_blank", rel: "noopener", title: a.source,
      text: `${a.model} ${fmt(a.value)}` }))
    : [el("span", { class: "muted", text: "–" })];
  return el("tr", { "data-score": key },
    el("th", { scope: "row", title: about, text: name }),
    el("td", { class: "score-value", text: fmt(v, 3) }),
    ...(baseline ? [el("td", { class: "score-value base", text: fmt(b, 3) })] : []),
    el("td", { class: "score-graph" }, track),
    el("td", { class: "published" }, ...published));
}

/** Fill the view for `model`; `vs`: the model it is compared with side by side (its scores as a second column). */
export function renderDisentanglement(container, model, vs = null) {
  const d = disentanglementOf(model);
  if (!d) {
    container.replaceChildren(el("p", { class: "hint", text: `${model.id} has no ground-truth metrics.` }));
    return;
  }
  const vd = disentanglementOf(vs);
  const baseline = vd ? { d: vd, title: vs.title ?? vs.id } : null;
  const rows = SCORES.filter(([, , read]) => typeof read(d) === "number" || (vd && typeof read(vd) === "number"));
  const table = el("table", { class: "scores", "aria-label": "disentanglement scores" },
    el("thead", {}, el("tr", {},
      el("th", { scope: "col", text: "score" }),
      el("th", { scope: "col", text: model.title ?? model.id }),
      ...(baseline ? [el("th", { scope: "col", text: baseline.title })] : []),
      el("th", { scope: "col", text: "0 – 1" }),
      el("th", { scope: "col", text: `published (${ANCHOR_DATASET})` }))),
    el("tbody", {}, ...rows.map((row) => scoreRow(row, d, baseline))));
  const best = Object.entries(d.best_factor ?? {}).map(([code, m]) => {
    const label = model.codes.find((c) => c.name === code)?.label;
    return el("li", { "data-code": code },
      el("b", { text: code }), ` → ${m.factor} `,
      el("span", { class: "muted", text: `(${fmt(100 * (m.normalised_mi ?? 0), 0)}% of its entropy${label ? `; labelled "${label}"` : ""})` }));
  });
  const note = (model.dataset === ANCHOR_DATASET ? "" : ` The published figures are on ${ANCHOR_DATASET}, not ${model.dataset}: a reference, not a like-for-like comparison.`) +
    // Lin et al. scored FactorVAE with their own variant (500 votes of 100 images, accuracy on the votes the classifier
    // was fitted on); on the same codes it gives a few points more than disentanglement_lib's procedure used here
    " InfoGAN-CR's published FactorVAE figures come from its own variant of the score, a few points above this procedure on the same codes.";
  container.replaceChildren(
    el("h3", { class: "sub", text: "Scores" }), table,
    el("p", { class: "hint", text: `Measured on ${model.dataset}'s real images through Q (the recognizer). Ticks: published figures; ` +
      `hollow tick: the side-by-side model's score.${note}` }),
    el("h3", { class: "sub", text: "Mutual information, codes × factors (nats)" }),
    el("div", { class: "heatmap-wrap" }, heatmap(model, d)),
    el("p", { class: "hint", text: "Shade: MI over the factor's entropy (1 = the code pins the factor down). Outlined: each code's best-matching factor. Hover a cell for its value." }),
    el("h3", { class: "sub", text: "Best-matching factor per code" }),
    el("ul", { class: "best-factors" }, ...best),
  );
}
