// The explorer page: everything is built from GET /models; the URL hash holds the state.
import { ApiError } from "./api.js";
import { Engine } from "./engine.js";
import { buildControls, el, formatValue, normalizeCodes, sameCodeSpec, widgetOf } from "./controls.js";
import { LiveRenderer } from "./live.js";
import { defaultState, parseHash, toHash, VIEWS } from "./state.js";
import { setupInfer } from "./infer.js";
import { downloadCanvas, gridCanvas, upscaledCanvas } from "./images.js";
import { imageSrc, paint } from "./frames.js";
import { disentanglementOf, renderDisentanglement, withFactorCaptions } from "./disentangle.js";
import { Chooser } from "./chooser.js";

const $ = (id) => document.getElementById(id);
const GALLERY_SIZE = 8;

let models = [];
let state = defaultState();
let controls = {};
let infer = null; // setupInfer's handle: reset(model) on a model switch
let engine = null; // engine.js: the in-browser generator or the server
let chooser = null; // chooser.js: the thumbnails the page opens on
// Inputs not yet reflected on screen, for the input→paint latency figures (benchmarks/browser_latency.py)
const unpainted = [];
// inputToPaint: ms from each slider input event to the animation frame after its image was painted; latencyParts:
// the same, split (ms): queue (input -> its request sent: waiting for the run in flight), run (sent -> result back;
// graph: the ONNX run's own time inside it, browser mode only; runner: "page" or "worker"), paint (result -> pixels
// on the canvas), frame (-> the next animation frame). firstLocalPaint: ms from navigation start to the first image generated in the page.
const debug = { inputToPaint: [], latencyParts: [], requests: 0, state: () => state, idle: () => idle(),
  engine: () => engine, firstLocalPaint: null };
window.explorer = debug;

const modelById = (id) => models.find((m) => m.id === id);
const currentModel = () => modelById(state.model) ?? models[0];
const randomSeed = () => crypto.getRandomValues(new Uint32Array(1))[0] % 2 ** 31;
// a seed is a whole number the API takes (0 .. 2**53 - 1, what a JavaScript number holds exactly); anything else
// ("1e20", "-3", "1.5", a 17-digit number that rounds) is refused here rather than sent or silently changed
const parseSeed = (text) => {
  const t = String(text).trim();
  return /^\d{1,16}$/.test(t) && Number(t) <= Number.MAX_SAFE_INTEGER ? Number(t) : null;
};
// a count typed into a number field, clamped to the field's own min/max (the API's limits, in index.html)
const parseCount = (input) => {
  const v = Number(String(input.value).trim());
  if (!Number.isFinite(v) || String(input.value).trim() === "") return null;
  return Math.min(Number(input.max), Math.max(Number(input.min), Math.round(v)));
};

// ---------------------------------------------------------------- errors and status
function showError(err) {
  const box = $("error");
  const text = err instanceof ApiError || err instanceof Error ? err.message : String(err);
  // an alert is announced on every write: the same failure on each slider frame was read out again and again
  if (box.textContent !== text) box.textContent = text;
  box.hidden = false;
  document.body.classList.add("has-error");
}
function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
  document.body.classList.remove("has-error");
}
function showLatency(ms) {
  $("latency").textContent = `latency ${Math.round(ms)} ms`;
}
function showEngine(where, runner = null) {
  // which path painted the last image: the page's own generator or the service. Written only when it changes: the
  // badge is a live region, announced on each change, not on each frame
  // mixed: side by side, one model generated here and the other (still loading, or too large) by the server
  const badge = $("engine");
  const text = { browser: "in browser", server: "server", mixed: "in browser + server" }[where] ?? "server";
  if (badge.textContent !== text) badge.textContent = text;
  badge.dataset.engine = where;
  const on = runner === "page" ? "on the page's thread, 1 thread" : `in a worker, ${engine.threads} thread${engine.threads > 1 ? "s" : ""}`;
  const server = `by the server${engine?.reason ? ` (${engine.reason})` : ""}`;
  badge.title = where === "browser" ? `generated in this page (onnxruntime-web, WASM, ${on})`
    : where === "mixed" ? `one model generated in this page, the other ${server}` : `generated ${server}`;
}
function showDevice(model) {
  const device = (model?.device ?? "?").toUpperCase();
  $("device").textContent = `device ${device}`;
  $("device").dataset.device = device.toLowerCase();
}

// ---------------------------------------------------------------- painting
/** A live view's picture (a canvas): a frame put at once, a server PNG drawn once decoded (never half-loaded). */
async function setImage(canvas, image, label) {
  await paint(canvas, image);
  canvas.setAttribute("aria-label", label);
  canvas.closest("figure")?.classList.remove("failed");
}

function codeSummary(codes) {
  const model = currentModel();
  return model.codes.map((code) => {
    return `${code.name}=${formatValue(code, codes[code.name])}`;
  }).join(", ");
}

/** Once painted: the next animation frame shows it; every input it answers gets its latency (and its parts). */
function afterPaint(seq, { sent, returned, painted = performance.now(), graphMs = null, runner = null } = {}) {
  requestAnimationFrame(() => {
    const t = performance.now();
    while (unpainted.length && unpainted[0].seq <= seq) {
      const input = unpainted.shift().t;
      debug.inputToPaint.push(t - input);
      if (sent !== undefined) {
        debug.latencyParts.push({ queue: sent - input, run: returned - sent, graph: graphMs, paint: painted - returned,
          frame: t - painted, runner });
      }
    }
  });
}

// ---------------------------------------------------------------- requests per view
function generatePayload(modelId, n = 1) {
  return { model: modelId, n, seed: state.seed, codes: { ...state.codes } };
}

// Each view's request is the state when it was asked for (render() passes it), not when it is sent; a result for a
// model no longer shown is not painted (it would clear that model's error, or show another model's picture).
const current = (modelId) => modelId === state.model;

const mainLive = new LiveRenderer(
  async (payload) => {
    debug.requests++;
    return engine.generate(modelById(payload.model), payload);
  },
  async ({ body, ms, where, graphMs, runner }, _params, { seq, sent, returned }) => {
    if (!current(body.model)) return;
    // an in-browser frame: putImageData on the canvas (sync); a server PNG: decoded, then drawn
    const canvas = $("main-image");
    await setImage(canvas, body.images[0], `generated ${body.model} sample, seed ${body.seed}, ${codeSummary(body.codes?.[0] ?? state.codes)}`);
    Object.assign(canvas.dataset, { model: body.model, seed: String(body.seed) }); // what a download is named after
    const painted = performance.now();
    afterPaint(seq, { sent, returned, painted, graphMs, runner });
    showLatency(ms);
    showEngine(where, runner);
    clearError();
    $("main-caption").textContent = `seed ${body.seed} · ${codeSummary(body.codes?.[0] ?? state.codes)}`;
    if (where === "browser" && debug.firstLocalPaint === null) requestAnimationFrame(() => { debug.firstLocalPaint = performance.now(); });
  },
  (err) => { failFigure($("main-image")); showError(err); },
  { paced: () => engine.mode(currentModel()) !== "browser" },
);

const galleryLive = new LiveRenderer(
  (payload) => engine.generate(modelById(payload.model), payload),
  async ({ body }) => {
    if (!current(body.model)) return;
    const imgs = body.images.map((image, i) => el("img", { class: "pixel", src: imageSrc(image), alt: `gallery sample ${i + 1}` }));
    $("gallery").replaceChildren(...imgs);
  },
  (err) => showError(err),
);

let lastGrid = null;
const gridLive = new LiveRenderer(
  (payload) => engine.traverse(modelById(payload.model), payload),
  async ({ body, ms, where, graphMs, runner }, _params, { seq, sent, returned }) => {
    if (!current(body.model)) return;
    showLatency(ms);
    showEngine(where);
    clearError();
    lastGrid = body;
    await renderGrid(body);
    afterPaint(seq, { sent, returned, graphMs, runner });
  },
  (err) => showError(err),
);

const compareLive = new LiveRenderer(
  ([pa, pb]) => Promise.all([engine.generate(modelById(pa.model), pa), engine.generate(modelById(pb.model), pb)]),
  async ([a, b], _params, { seq, sent, returned }) => {
    if (!current(a.body.model) || b.body.model !== state.vs) return;
    showLatency(Math.max(a.ms, b.ms));
    showEngine(a.where === b.where ? a.where : "mixed", a.runner);
    clearError();
    await Promise.all([
      setImage($("compare-a"), a.body.images[0], `generated by ${a.body.model}`),
      setImage($("compare-b"), b.body.images[0], `generated by ${b.body.model}`),
    ]);
    $("compare-a-cap").textContent = modelById(a.body.model)?.title ?? a.body.model;
    $("compare-b-cap").textContent = modelById(b.body.model)?.title ?? b.body.model;
    afterPaint(seq, { sent, returned, runner: a.runner });
  },
  (err) => showError(err),
);

function failFigure(img) {
  img.closest("figure")?.classList.add("failed");
}

/** An empty frame: nothing painted, nothing to download. */
function blankFigure(canvas) {
  canvas.getContext("2d")?.clearRect(0, 0, canvas.width, canvas.height);
  for (const key of ["painted", "model", "seed"]) delete canvas.dataset[key];
  failFigure(canvas);
}

function traversePayload() {
  const model = currentModel();
  const code = model.codes.find((c) => c.name === state.grid) ?? model.codes[0];
  const sweep = widgetOf(code).sweep(code.control);
  return { model: state.model, code: code.name, rows: state.rows, cols: sweep.cols ?? state.cols,
    ...(sweep.low !== undefined ? { low: sweep.low, high: sweep.high } : {}), seed: state.seed, codes: { ...state.codes } };
}

async function renderGrid(body) {
  const code = currentModel().codes.find((c) => c.name === body.code);
  const head = body.values.map((v) => el("div", { class: "grid-head", text: code ? formatValue(code, v) : String(v) }));
  // one canvas per cell, painted before the grid is swapped in (server PNGs decode first: no blank frame)
  const cells = body.images.map((_, i) => el("canvas", { class: "pixel", role: "img", width: "1", height: "1",
    // the column's heading as shown (a category's label, a rounded value), not the raw value ("c1 = -1.3333333333333335",
    // "item = 2" for the column headed "Ankle boot")
    "aria-label": `sample ${Math.floor(i / body.cols) + 1}, ${body.code} = ${head[i % body.cols].textContent}` }));
  await Promise.all(cells.map((cell, i) => paint(cell, body.images[i])));
  const grid = $("grid");
  grid.style.setProperty("--cols", String(body.cols));
  grid.replaceChildren(...head, ...cells);
  const sweep = code ? widgetOf(code).sweepCaption(body.code, head[0].textContent, head.at(-1).textContent) : body.code;
  $("grid-note").textContent = `Rows: ${body.rows} samples (seed ${body.seed}). Columns: ${sweep}.`;
}

/** Ask for whatever the current view shows; phase "commit" also refreshes the slower extras. */
function render(phase = "commit") {
  // an unknown model in the link: its error stays up and nothing is drawn (another model's picture under that id
  // would clear the error at its first paint and show what the link did not ask for)
  if (!models.length || !modelById(state.model)) return null;
  let seq = null;
  if (state.view === "explore") {
    seq = mainLive.request(generatePayload(state.model));
    if (phase === "commit") galleryLive.request(generatePayload(state.model, GALLERY_SIZE));
  } else if (state.view === "traverse") {
    seq = gridLive.request(traversePayload());
  } else if (state.view === "compare") {
    seq = state.vs ? compareLive.request([generatePayload(state.model), generatePayload(state.vs)]) : null;
  }
  return seq;
}

function idle() {
  return [mainLive, galleryLive, gridLive, compareLive].every((r) => r.idle) && !document.querySelector(".busy") && !engine?.loading
    && !chooser?.pending;
}

// ---------------------------------------------------------------- state ⇄ URL
function commitUrl({ replace = false } = {}) {
  const hash = toHash(state);
  if (location.hash === hash) return;
  if (replace) history.replaceState(null, "", hash);
  else history.pushState(null, "", hash);
}

// at: the input event's timeStamp (performance.now() clock), when the control passes it
function onCodeChange(name, value, phase, at = performance.now()) {
  if (value === null) { // nothing usable typed: the field shows the value in use again
    controls[name]?.set(state.codes[name]);
    return;
  }
  const code = currentModel().codes.find((c) => c.name === name);
  if (code) value = widgetOf(code).coerce(code.control, value); // the value the link will hold (state.js)
  state.codes[name] = value;
  controls[name]?.set(value);
  if (phase === "input") {
    const seq = render("input");
    if (seq !== null && seq !== undefined) unpainted.push({ seq, t: at });
    return;
  }
  commitUrl();
  render("commit");
}

function comparableModels(model) {
  return models.filter((m) => m.id !== model.id && sameCodeSpec(m, model));
}

function defaultComparison(model) {
  const others = comparableModels(model);
  // the model's own baseline (its manifest's compare_with) when it is served, else any model with the same codes
  return (others.find((m) => m.id === model.compare_with) ?? others[0])?.id ?? null;
}

/** Bring the page in line with `next` (from the URL or a model switch) and rebuild what changed. */
function applyState(next, { fromUrl = false } = {}) {
  const prevModel = state.model;
  const prevVs = state.vs;
  const requested = next.model ?? models[0].id;
  const model = modelById(requested);
  state = { ...next, model: requested };
  const spec = model ?? models[0];
  if (!model) {
    // the unknown id stays in the link and the select shows no model until one is chosen; render() draws nothing,
    // and the picture of the model shown before goes (it is not this link's, nor a download of it)
    showError(`Unknown model "${requested}" in the link; available: ${models.map((m) => m.id).join(", ")}.`);
    blankFigure($("main-image"));
    $("main-caption").textContent = "";
  }
  state.codes = normalizeCodes(spec.codes, state.codes);
  // the traversal starts on a code whose sweep has free columns (a range), else the first code
  const freeSweep = (c) => widgetOf(c).sweep(c.control).cols === undefined;
  if (!spec.codes.some((c) => c.name === state.grid)) state.grid = (spec.codes.find(freeSweep) ?? spec.codes[0])?.name ?? null;
  const comparable = comparableModels(spec);
  if (!comparable.some((m) => m.id === state.vs)) state.vs = defaultComparison(spec);
  state.seed = parseSeed(state.seed) ?? randomSeed();
  // the Disentanglement view exists only for models with ground-truth metrics (its tab is hidden for the others)
  const hasFactors = !!disentanglementOf(spec);
  if (state.view === "factors" && !hasFactors) state.view = "explore";
  for (const key of ["rows", "cols"]) {
    const input = $(`grid-${key}`);
    state[key] = Number.isFinite(state[key]) ? Math.min(Number(input.max), Math.max(Number(input.min), state[key]))
      : defaultState()[key];
  }

  if (model) engine.prepare(model); // fetch its generator into the page while the server paints
  if (prevModel !== state.model || !Object.keys(controls).length) {
    // sliders captioned with the factor each code matches best (a label in the manifest wins)
    controls = buildControls($("codes"), withFactorCaptions(spec), state.codes, onCodeChange);
    $("model").value = model ? model.id : "";
    chooser.select(model ? model.id : null);
    $("tab-factors").hidden = !hasFactors;
    showDevice(spec);
    $("model-meta").textContent = modelMeta(spec);
    fillSelect($("grid-code"), spec.codes.map((c) => [c.name, c.label ? `${c.name} (${c.label})` : c.name]));
    fillSelect($("compare-model"), comparable.map((m) => [m.id, m.title ?? m.id]));
    $("gallery").replaceChildren();
    // the traversal grid too: a failed request for the new model would leave the old one's grid up, and its
    // download named after the new model
    $("grid").replaceChildren();
    $("grid-note").textContent = "";
    lastGrid = null;
    infer.reset(spec); // results and drawings belong to the model they were made for
    document.documentElement.style.setProperty("--img-aspect", `${spec.image.width} / ${spec.image.height}`);
  } else {
    for (const [name, value] of Object.entries(state.codes)) controls[name]?.set(value);
  }
  $("seed").value = String(state.seed);
  $("grid-code").value = state.grid ?? "";
  $("compare-model").value = state.vs ?? "";
  // nothing to compare with is a fact about the served models, not an error: said in the view, frames hidden
  $("compare-none").hidden = !!state.vs;
  $("compare-none").textContent = state.vs ? "" : `No other served model has the same codes as "${state.model}": side by side ` +
    "needs a model trained with the same latent spec (such as its λ = 0 baseline, exported beside it).";
  $("compare-pair").hidden = !state.vs;
  if (hasFactors && (prevModel !== state.model || prevVs !== state.vs || !$("factors").childElementCount)) {
    renderDisentanglement($("factors"), spec, modelById(state.vs));
  }
  $("compare-model").disabled = !state.vs;
  const sweepCode = spec.codes.find((c) => c.name === state.grid);
  const fixedCols = sweepCode ? widgetOf(sweepCode).sweep(sweepCode.control).cols : undefined;
  $("grid-rows").value = String(state.rows);
  $("grid-cols").value = String(fixedCols ?? state.cols);
  $("grid-cols").disabled = fixedCols !== undefined;
  showView(state.view);
  if (!fromUrl) commitUrl();
  else commitUrl({ replace: true }); // normalised form of the link (defaults filled in)
  if (model) clearError();
  render("commit");
}

function modelMeta(model) {
  // headline metrics only (accuracy, NMI, FID …): numeric leaves of the manifest's metrics, two levels deep
  const leaves = [];
  const walk = (obj, path) => {
    for (const [key, value] of Object.entries(obj ?? {})) {
      if (typeof value === "number") leaves.push([[...path, key], value]);
      else if (value && typeof value === "object" && !Array.isArray(value) && path.length < 2) walk(value, [...path, key]);
    }
  };
  walk(model.metrics, []);
  const headline = leaves.filter(([path]) => /^(accuracy|nmi|fid|is)$/i.test(path.at(-1)))
    .slice(0, 3).map(([path, v]) => `${path.join(" ")} ${fmtMetric(v)}`);
  return [`${model.dataset}`, `${model.image.width}×${model.image.height}×${model.image.channels}`,
    `noise ${model.noise.dim} (${model.noise.distribution})`, ...headline].join(" · ");
}
const fmtMetric = (v) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : String(v));

function fillSelect(select, options) {
  select.replaceChildren(...options.map(([value, text]) => el("option", { value, text })));
  select.disabled = options.length === 0;
}

function showView(view) {
  for (const name of VIEWS) {
    $(`view-${name}`).hidden = name !== view;
    $(`tab-${name}`).setAttribute("aria-selected", String(name === view));
    $(`tab-${name}`).tabIndex = name === view ? 0 : -1;
  }
  document.body.dataset.view = view;
}

function update(patch) {
  if ("seed" in patch) $("seed-note").hidden = true; // a seed chosen here: the link's refused one is history
  applyState({ ...state, ...patch });
}

// ---------------------------------------------------------------- wiring
function wire() {
  $("model").addEventListener("change", (e) => update({ model: e.target.value }));
  $("new-sample").addEventListener("click", () => update({ seed: randomSeed() }));
  $("seed").addEventListener("change", (e) => {
    const seed = parseSeed(e.target.value);
    if (seed !== null) update({ seed });
    e.target.value = String(state.seed); // the field shows the seed in use, never what was refused
  });
  for (const tab of document.querySelectorAll("[role=tab]")) tab.addEventListener("click", () => update({ view: tab.dataset.view }));
  $("grid-code").addEventListener("change", (e) => update({ grid: e.target.value }));
  for (const key of ["rows", "cols"]) {
    $(`grid-${key}`).addEventListener("change", (e) => {
      const v = parseCount(e.target);
      if (v !== null) update({ [key]: v });
      e.target.value = String(state[key]);
    });
  }
  $("compare-model").addEventListener("change", (e) => update({ vs: e.target.value }));
  $("download-image").addEventListener("click", () => {
    // named after the picture on the canvas (a failed or pending request may have left another model's or seed's)
    const canvas = $("main-image");
    if ("painted" in canvas.dataset) downloadCanvas(upscaledCanvas(canvas, 8), `infogan-${canvas.dataset.model}-seed${canvas.dataset.seed}.png`);
  });
  $("download-grid").addEventListener("click", async () => {
    const cells = [...$("grid").querySelectorAll("canvas")];
    if (lastGrid && cells.length) downloadCanvas(gridCanvas(cells, lastGrid.rows, lastGrid.cols, 4), `infogan-${state.model}-${lastGrid.code}-grid.png`);
  });
  window.addEventListener("popstate", fromUrl);
  window.addEventListener("hashchange", fromUrl);
  document.addEventListener("keydown", onKey);
  // tablist: arrow keys move between tabs
  // (WAI-ARIA tabs pattern: arrows wrap, Home and End go to the first and last tab)
  $("tab-explore").parentElement.addEventListener("keydown", (e) => {
    if (!["ArrowRight", "ArrowLeft", "Home", "End"].includes(e.key)) return;
    e.preventDefault(); // Home/End would scroll the page
    const shown = VIEWS.filter((v) => !$(`tab-${v}`).hidden); // the Disentanglement tab only where it applies
    const i = { Home: 0, End: shown.length - 1 }[e.key] ?? shown.indexOf(state.view) + (e.key === "ArrowRight" ? 1 : -1);
    const view = shown[(i + shown.length) % shown.length];
    update({ view });
    $(`tab-${view}`).focus();
  });
  infer = setupInfer({
    engine: () => engine,
    model: () => state.model,
    spec: () => currentModel(),
    onCodes: (codes) => {
      const next = { ...state.codes };
      for (const [name, info] of Object.entries(codes)) next[name] = info.value;
      applyState({ ...state, codes: next });
    },
    showError, clearError, showLatency, showEngine,
  });
}

function fromUrl() {
  // before the models are known there is nothing to apply it to: main() reads the hash once they are
  if (!models.length || location.hash === toHash(state)) return;
  applyLink(location.hash);
}

/** A link's state; a seed in it that the API cannot take is replaced by a fresh one, and the page says so (the
 * link would otherwise show another picture each time it is opened, without a word). */
function applyLink(hash) {
  const given = new URLSearchParams(hash.replace(/^#/, "")).get("seed");
  const next = parseHash(hash);
  applyState(next, { fromUrl: true });
  const refused = given !== null && given !== String(state.seed) && parseSeed(given) === null;
  $("seed-note").hidden = !refused;
  $("seed-note").textContent = refused
    ? `The link's seed ${given.slice(0, 24)} is not a whole number from 0 to ${Number.MAX_SAFE_INTEGER}; a new one was drawn.`
    : "";
}

function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey || !models.length) return;
  const t = e.target;
  const typing = t instanceof HTMLInputElement && t.type !== "range" && t.type !== "file" || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement;
  if (typing) return;
  if (e.key === "r" || e.key === "R") {
    e.preventDefault();
    update({ seed: randomSeed() });
  } else if (/^[0-9]$/.test(e.key)) {
    const model = currentModel();
    const focusedGroup = t.closest?.("[data-code]")?.dataset.code;
    // the focused code if a digit means something to it, else the first code a digit means something to
    const pick = (c) => widgetOf(c).digit(c.control, Number(e.key));
    const code = model.codes.find((c) => c.name === focusedGroup && pick(c) !== null) ?? model.codes.find((c) => pick(c) !== null);
    if (code) {
      e.preventDefault();
      onCodeChange(code.name, pick(code), "commit");
    }
  }
}

async function loadModels() {
  // the service loads its models in the background: 503 (or an empty list) means "not yet"
  for (let attempt = 0; ; attempt++) {
    let result = null;
    try {
      result = await engine.models();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 503) || attempt >= 60) throw err;
    }
    if (result?.body.models?.length) {
      showLatency(result.ms);
      return result.body.models;
    }
    // the server answers 503 while it loads, so an empty list is final: nothing loadable in its MODELS_DIR
    if (result) throw new ApiError("The server serves no models: its MODELS_DIR has no loadable model folder (see /readyz).");
    showError("Models are still loading on the server…");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function main() {
  // a static build (infogan site) marks its page: no server behind it, everything runs here
  engine = await Engine.create({ staticSite: document.documentElement.dataset.site === "static" });
  engine.onReady = (model) => { if (model.id === state.model) render("commit"); };
  document.body.classList.toggle("static-site", engine.staticSite);
  chooser = new Chooser($("chooser"), engine, (id) => update({ model: id }));
  wire();
  try {
    models = await loadModels();
  } catch (err) {
    showError(err);
    // nothing to drive: every control says so (main stays inert, and each control is disabled to look it)
    for (const node of document.querySelectorAll("main button, main input, main select")) node.disabled = true;
    $("model").disabled = true;
    $("new-sample").title = "no model is served";
    return;
  }
  clearError();
  document.querySelector("main").inert = false;
  fillSelect($("model"), models.map((m) => [m.id, m.title ? `${m.title}` : m.id]));
  chooser.build(models);
  applyLink(location.hash);
  document.body.classList.add("ready");
}

main();
