// Infer codes from an image: a file (picker or drag and drop) or a drawing (pointer or keyboard). The recognizer's
// answer moves the controls, and its reconstruction is shown beside the input. A result belongs to the model and
// the request it came from: a model switch clears it, and an answer to an older request is dropped.
import { imageSrc } from "./frames.js";
import { el, widgetOf } from "./controls.js";

const $ = (id) => document.getElementById(id);
// the drawing canvas paints like the model's training images (GET /models: `drawing`)
const POLARITY = { "light-on-dark": { ground: "#000", ink: "#fff" }, "dark-on-light": { ground: "#fff", ink: "#000" } };
// keyboard pen: one arrow press moves it 1/28 of the canvas (one pixel of a 28x28 model), Shift+arrow 4x that
const PEN_STEPS = 28;

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error(`could not read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

/** The drawing, box-downscaled to the model's resolution (what the recognizer was trained on): its PNG data URL
 * (what the server reads) and its pixels as the recognizer's (1, C, H, W) input in [0, 1] (what the page runs). */
function drawingInput(canvas, spec) {
  const small = document.createElement("canvas");
  small.width = spec.image.width;
  small.height = spec.image.height;
  const ctx = small.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(canvas, 0, 0, small.width, small.height);
  const { width: w, height: h, channels: c } = spec.image;
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const pixels = new Float32Array(c * h * w);
  // an opaque grey drawing: R = G = B, so the service's luma conversion (PIL "L") gives the same value
  for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) pixels[ch * h * w + p] = rgba[4 * p + ch] / 255;
  return { dataUrl: small.toDataURL("image/png"), pixels };
}

function renderCodes(spec, codes) {
  const rows = spec.codes.filter((code) => codes[code.name]).map((code) =>
    el("div", { class: "infer-code", "data-code": code.name }, ...widgetOf(code).inferred(code, codes[code.name])));
  $("infer-codes").replaceChildren(...rows);
}

export function setupInfer({ engine, model, spec, onCodes, showError, clearError, showLatency, showEngine }) {
  const zone = $("dropzone");
  let ticket = 0; // the newest request's number: an answer carrying an older one is stale

  // live: a reading while the pen moves (shown, the controls stay); else the final one moves the controls too.
  // pixels: the drawing's recognizer input, which the page runs itself when its recognizer loads
  async function infer(dataUrl, { pixels = null, live = false } = {}) {
    const mine = ++ticket;
    const forModel = model();
    if (!live) zone.classList.add("busy");
    try {
      const { body, ms, where } = await engine().inferCodes(spec(), { image: dataUrl, model: forModel }, pixels);
      if (mine !== ticket || forModel !== model()) return; // a newer request or another model took over
      showLatency(ms);
      showEngine(where); // the badge says where this reading ran (the recognizer, in the page or on the server)
      clearError();
      $("infer-input").src = dataUrl;
      $("infer-recon").src = imageSrc(body.reconstruction);
      $("infer-result").hidden = false;
      renderCodes(spec(), body.codes);
      $("infer-result").dataset.readings = String(Number($("infer-result").dataset.readings ?? 0) + 1);
      if (!live) onCodes(body.codes);
    } catch (err) {
      if (mine === ticket) showError(err);
    } finally {
      if (mine === ticket) zone.classList.remove("busy");
    }
  }

  async function fromFile(file) {
    if (!file) return;
    if (!file.type.startsWith("image/")) {
      showError(`"${file.name}" is not an image (${file.type || "unknown type"}).`);
      return;
    }
    let dataUrl;
    try {
      dataUrl = await readAsDataUrl(file);
    } catch (err) {
      showError(err); // a file that vanished or cannot be read: said, not an unhandled rejection
      return;
    }
    infer(dataUrl);
  }

  $("file").addEventListener("change", (e) => {
    fromFile(e.target.files[0]);
    e.target.value = ""; // choosing the same file again is a change too: it runs again
  });
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
  // a file dropped beside the zone would make the browser leave the page to show it
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (e) => { if (!zone.contains(e.target)) e.preventDefault(); });
  }

  // drawing: strokes in the polarity of the model's images; an empty canvas shows a hint and cannot be sent
  const canvas = $("draw");
  const ctx = canvas.getContext("2d");
  let colours = POLARITY["light-on-dark"];
  const drawn = (yes) => {
    canvas.parentElement.classList.toggle("drawn", yes);
    $("draw-infer").disabled = !yes;
  };
  // live inference: every stroke segment asks for a reading; one runs at a time and the newest drawing wins
  let liveBusy = false;
  let liveAgain = false;
  const clear = () => {
    liveAgain = false; // no queued reading of the emptied canvas
    ctx.fillStyle = colours.ground;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    canvas.style.background = colours.ground;
    drawn(false);
  };
  const stroke = (from, to) => {
    ctx.strokeStyle = colours.ink;
    ctx.lineWidth = canvas.width / 12;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(...from);
    ctx.lineTo(...to);
    ctx.stroke();
    drawn(true);
  };
  clear();
  let last = null;
  const point = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (canvas.width / r.width), (e.clientY - r.top) * (canvas.height / r.height)];
  };
  // one pen at a time: a second finger, or a pointer other than the primary button, draws nothing (two fingers
  // once drew a band between them, and a right-button drag drew and moved the controls)
  let penId = null;
  canvas.addEventListener("pointerdown", (e) => {
    if (penId !== null || !e.isPrimary || e.button !== 0) return;
    penId = e.pointerId;
    canvas.setPointerCapture(e.pointerId);
    last = point(e);
    stroke(last, last); // a tap leaves a dot, as Space does with the keyboard pen
    liveInfer();
  });
  const liveInfer = async () => {
    if (liveBusy) { liveAgain = true; return; }
    liveBusy = true;
    try {
      const { dataUrl, pixels } = drawingInput(canvas, spec());
      await infer(dataUrl, { pixels, live: true });
    } finally {
      liveBusy = false;
      if (liveAgain) { liveAgain = false; liveInfer(); }
    }
  };
  // the final reading (pen lifted, "Infer from drawing", Enter) reads the whole drawing and moves the controls; a
  // live reading still queued behind one in flight would be sent after it and, being newer, drop its answer
  const finalInfer = () => {
    liveAgain = false;
    const { dataUrl, pixels } = drawingInput(canvas, spec());
    infer(dataUrl, { pixels });
  };
  canvas.addEventListener("pointermove", (e) => {
    if (!last || e.pointerId !== penId) return;
    const p = point(e);
    stroke(last, p);
    last = p;
    liveInfer();
  });
  const end = (e) => {
    if (e.pointerId !== penId) return;
    if (last && canvas.parentElement.classList.contains("drawn")) finalInfer();
    last = null;
    penId = null;
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);

  // keyboard drawing: arrows move a pen (shown as a ring over the canvas), Space lifts or lowers it
  const pen = { x: canvas.width / 2, y: canvas.height / 2, down: false };
  const cursor = $("pen-cursor");
  const showPen = () => {
    cursor.style.left = `${(pen.x / canvas.width) * 100}%`;
    cursor.style.top = `${(pen.y / canvas.height) * 100}%`;
    cursor.classList.toggle("down", pen.down);
    $("pen-state").textContent = pen.down ? "pen down: arrows draw" : "pen up: arrows move, Space puts it down";
  };
  canvas.addEventListener("keydown", (e) => {
    const unit = (canvas.width / PEN_STEPS) * (e.shiftKey ? 4 : 1);
    const moves = { ArrowLeft: [-unit, 0], ArrowRight: [unit, 0], ArrowUp: [0, -unit], ArrowDown: [0, unit] };
    if (e.key === " ") {
      pen.down = !pen.down;
      if (pen.down) stroke([pen.x, pen.y], [pen.x, pen.y]); // a dot where it lands
      else if (canvas.parentElement.classList.contains("drawn")) finalInfer(); // lifted, as a pointer's pen-up
    } else if (e.key in moves) {
      const from = [pen.x, pen.y];
      pen.x = Math.min(canvas.width, Math.max(0, pen.x + moves[e.key][0]));
      pen.y = Math.min(canvas.height, Math.max(0, pen.y + moves[e.key][1]));
      if (pen.down) { stroke(from, [pen.x, pen.y]); liveInfer(); }
    } else if (e.key === "Enter") {
      if (!$("draw-infer").disabled) $("draw-infer").click();
    } else return;
    e.preventDefault();
    showPen();
  });
  canvas.addEventListener("focus", showPen);
  $("draw-clear").addEventListener("click", clear);
  $("draw-infer").addEventListener("click", finalInfer);

  return {
    /** A model switch: no result, request or drawing of the previous model stays; the canvas takes its polarity. */
    reset(next) {
      ticket++;
      zone.classList.remove("busy");
      $("infer-result").hidden = true;
      $("infer-codes").replaceChildren();
      $("infer-input").removeAttribute("src");
      $("infer-recon").removeAttribute("src");
      colours = POLARITY[next.drawing] ?? POLARITY["light-on-dark"];
      pen.down = false;
      clear(); // also drops a queued live reading: none of the old drawing runs on the new model
    },
  };
}
