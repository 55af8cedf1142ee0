// Infer codes from an image: a file (picker or drag and drop) or a drawing. The recognizer's
// answer moves the controls, and its reconstruction is shown beside the input.
import { api, pngSrc } from "./api.js";
import { el } from "./controls.js";

const $ = (id) => document.getElementById(id);

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error(`could not read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

/** The drawing, box-downscaled to the model's resolution (what the recognizer was trained on). */
function drawingDataUrl(canvas, spec) {
  const small = document.createElement("canvas");
  small.width = spec.image.width;
  small.height = spec.image.height;
  const ctx = small.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(canvas, 0, 0, small.width, small.height);
  return small.toDataURL("image/png");
}

function renderCodes(spec, codes) {
  const rows = [];
  for (const code of spec.codes) {
    const info = codes[code.name];
    if (!info) continue;
    if (info.type === "categorical") {
      const labels = code.labels ?? info.probabilities.map((_, i) => String(i));
      const bars = info.probabilities.map((p, i) => el("div", { class: `prob${i === info.value ? " best" : ""}`, title: `${labels[i]}: ${(p * 100).toFixed(1)}%` },
        el("span", { class: "prob-label", text: labels[i] }),
        el("span", { class: "prob-bar", style: `--p:${(p * 100).toFixed(1)}%` }),
        el("span", { class: "prob-val", text: `${(p * 100).toFixed(0)}%` })));
      rows.push(el("div", { class: "infer-code", "data-code": code.name },
        el("h4", { text: `${code.name}: ${labels[info.value]}` }), el("div", { class: "probs", role: "list", "aria-label": `${code.name} probabilities` }, ...bars)));
    } else {
      rows.push(el("div", { class: "infer-code", "data-code": code.name },
        el("h4", { text: `${code.name}${code.label ? ` (${code.label})` : ""}: ${Number(info.value).toFixed(2)}` }),
        el("p", { class: "hint", text: `mean ${Number(info.mean).toFixed(2)} ± ${Number(info.std).toFixed(2)}` })));
    }
  }
  $("infer-codes").replaceChildren(...rows);
}

export function setupInfer({ model, spec, onCodes, showError, clearError, showLatency }) {
  const zone = $("dropzone");

  async function infer(dataUrl) {
    zone.classList.add("busy");
    try {
      const { body, ms } = await api.inferCodes({ image: dataUrl, model: model() });
      showLatency(ms);
      clearError();
      $("infer-input").src = dataUrl;
      $("infer-recon").src = pngSrc(body.reconstruction);
      $("infer-result").hidden = false;
      renderCodes(spec(), body.codes);
      onCodes(body.codes);
    } catch (err) {
      showError(err);
    } finally {
      zone.classList.remove("busy");
    }
  }

  async function fromFile(file) {
    if (!file) return;
    if (!file.type.startsWith("image/")) {
      showError(`"${file.name}" is not an image (${file.type || "unknown type"}).`);
      return;
    }
    infer(await readAsDataUrl(file));
  }

  $("file").addEventListener("change", (e) => fromFile(e.target.files[0]));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    fromFile(e.dataTransfer.files[0]);
  });
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); }
  });

  // drawing: light strokes on a dark ground, like MNIST (the service inverts dark-on-light uploads)
  const canvas = $("draw");
  const ctx = canvas.getContext("2d");
  // an empty canvas shows a hint and cannot be sent (a black square has no codes worth reading)
  const drawn = (yes) => {
    canvas.parentElement.classList.toggle("drawn", yes);
    $("draw-infer").disabled = !yes;
  };
  const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height); drawn(false); };
  clear();
  let last = null;
  const point = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (canvas.width / r.width), (e.clientY - r.top) * (canvas.height / r.height)];
  };
  canvas.addEventListener("pointerdown", (e) => { canvas.setPointerCapture(e.pointerId); last = point(e); });
  canvas.addEventListener("pointermove", (e) => {
    if (!last) return;
    const p = point(e);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = canvas.width / 12;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(...last);
    ctx.lineTo(...p);
    ctx.stroke();
    last = p;
    drawn(true);
  });
  const end = () => { last = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  $("draw-clear").addEventListener("click", clear);
  $("draw-infer").addEventListener("click", () => infer(drawingDataUrl(canvas, spec())));
}
