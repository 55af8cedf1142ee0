// Where images come from: the page's own generator (onnxruntime-web in a Web Worker, "in browser") or the service
// ("server"). Both answer like the JSON API (api.js), so the views do not care which one painted. The in-browser
// path draws z from the seed with the portable sampler (sampler.js) and runs the same ONNX graph, so a (seed, codes)
// gives the service's pixels (tests/e2e/test_local_generation.py). Fallback to the server: no WebAssembly, the
// runtime missing (npm absent at install), a model file too large, or ?engine=server in the page's URL.
import { api, ApiError } from "./api.js";
import { PageRunner } from "./page-runner.js";
import { drawLatent, encodeCodes, outputNames, readCodes } from "./sampler.js";

// Largest ONNX file fetched into the page (the int8 MNIST generator: 6.9 MB; an fp32 CelebA one may be 100+ MB)
export const MAX_MODEL_BYTES = 48 * 2 ** 20;
const ORT_URL = new URL("./ort/ort.wasm.min.mjs", import.meta.url).href;

class Worker_ {
  constructor() {
    this.worker = new Worker(new URL("./engine-worker.js", import.meta.url), { type: "module" });
    this.next = 0;
    this.waiting = new Map();
    this.worker.onmessage = ({ data }) => {
      const w = this.waiting.get(data.id);
      this.waiting.delete(data.id);
      if (data.ok) w.resolve(data.result);
      else w.reject(new Error(data.error));
    };
    this.worker.onerror = (e) => { for (const w of this.waiting.values()) w.reject(new Error(e.message || "worker failed")); this.waiting.clear(); };
  }

  call(op, args = {}, transfer = []) {
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, ...args }, transfer);
    });
  }
}

/** (N, C, H, W) floats in [0, 1] -> N frames (frames.js), views on the worker's transferred buffer: no copy, no
 * PNG; the page rounds to bytes with the service's rounding when it paints one. */
function toFrames(data, [n, c, h, w]) {
  const size = c * h * w;
  return [...Array(n).keys()].map((i) => ({ data: data.subarray(i * size, (i + 1) * size), channels: c, height: h, width: w }));
}

export class Engine {
  constructor({ staticSite, worker, threads, reason, pageRunner }) {
    this.staticSite = staticSite; // no server: everything runs here
    this.worker = worker; // null: server path only
    this.threads = threads;
    this.reason = reason; // why there is no worker, for the badge's title
    this.ready = new Map(); // model id -> Promise<boolean> (its generator loaded in the worker)
    this.failed = new Map(); // model id -> why it runs on the server
    this.loaded = new Set(); // model ids whose generator runs here
    this.unreadable = new Set(); // model ids whose recognizer loaded here but failed to run: read on the server
    this.onReady = null;
    this.loading = 0; // model files being fetched into the worker (the page is not idle meanwhile)
    this.pageRunner = pageRunner; // null: every run in the worker (?runner=worker); else fast one-image runs here
  }

  static async create({ staticSite = false } = {}) {
    const query = new URLSearchParams(location.search);
    const forced = query.get("engine") === "server";
    // ?threads=N caps the WASM threads (benchmarks); more than one needs cross-origin isolation (SharedArrayBuffer)
    // ORT's own default, half the cores up to 4: on 2 cores a second thread only contends (measured: 2.8 ms median
    // per MNIST frame with 1 thread against 15.9 ms with 2, on a loaded 2-core EPYC)
    const cap = Number(query.get("threads")) || Math.min(4, Math.ceil((navigator.hardwareConcurrency || 1) / 2));
    const threads = globalThis.crossOriginIsolated ? Math.max(1, cap) : 1;
    let worker = null;
    let reason = forced ? "?engine=server" : null;
    if (!forced && typeof WebAssembly !== "object") reason = "no WebAssembly";
    if (!reason) {
      try {
        worker = new Worker_();
        await worker.call("init", { ortUrl: ORT_URL, threads });
      } catch (err) {
        worker?.worker.terminate();
        worker = null;
        reason = `in-browser runtime unavailable (${err.message})`;
      }
    }
    // ?runner=worker keeps even the live one-image frames in the worker (page-runner.js says why they are not);
    // ?runner=page runs them on the page's thread whatever their time (tests of that path on a loaded machine)
    const runner = query.get("runner");
    const pageRunner = worker && runner !== "worker" ? new PageRunner(ORT_URL, { always: runner === "page" }) : null;
    return new Engine({ staticSite, worker, threads, reason, pageRunner });
  }

  fileUrl(modelId, name) {
    // absolute (the worker resolves URLs against its own script's), from the folder above static/ (this file's):
    // the service's or the site's root, also when the page's own URL lacks its trailing slash (a proxy that serves
    // its prefix /explorer as the page), where the page's base was the proxy's root
    return new URL(`../models/${encodeURIComponent(modelId)}/files/${name}`, import.meta.url).href;
  }

  async models() {
    if (!this.staticSite) return api.models();
    const t0 = performance.now();
    const response = await fetch(new URL("../models.json", import.meta.url)); // beside static/, as fileUrl
    if (!response.ok) throw new ApiError(`models.json: ${response.status}`, response.status);
    return { body: await response.json(), ms: performance.now() - t0 };
  }

  /** Starts loading a model's generator (and recognizer); resolves true once it runs here. */
  prepare(model) {
    if (!this.worker) return Promise.resolve(false);
    if (!this.ready.has(model.id)) {
      const load = (name) => this.worker.call("load", { url: this.fileUrl(model.id, name), maxBytes: MAX_MODEL_BYTES });
      this.loading++;
      this.ready.set(model.id, load("generator.onnx").then(() => {
        // the page's own session once the worker's runs (the worker paints meanwhile; not idle until it is done)
        if (this.pageRunner) {
          this.loading++;
          this.pageRunner.load(this.fileUrl(model.id, "generator.onnx"), MAX_MODEL_BYTES).finally(() => { this.loading--; });
        }
        return true;
      }, (err) => {
        this.failed.set(model.id, err.message);
        return false;
      }).finally(() => { this.loading--; }));
    }
    return this.ready.get(model.id);
  }

  /** "browser" once the model's generator runs here, else "server". */
  mode(model) {
    return this.loaded.has(model?.id) ? "browser" : "server";
  }

  /** Whether this request runs here. With a server, requests go there while the model loads (no wait for the
   * first image), and onReady(model) tells the page when the next one can run here. */
  async #local(model) {
    if (this.loaded.has(model.id)) return true;
    if (this.failed.has(model.id)) return false;
    const loading = this.prepare(model);
    if (!this.staticSite) {
      loading.then((ok) => {
        if (ok && !this.loaded.has(model.id) && !this.failed.has(model.id)) {
          this.loaded.add(model.id);
          this.onReady?.(model);
        }
      });
      return false;
    }
    if (await loading) this.loaded.add(model.id);
    return this.loaded.has(model.id);
  }

  /** -> {frames, graphMs: the ONNX run's own time, runner: "page" (this thread: one image, a fast graph) | "worker"} */
  async #runGenerator(model, z, c, n) {
    const feeds = { z: { data: z, dims: [n, model.noise.dim] }, c: { data: c, dims: [n, c.length / n] } };
    const url = this.fileUrl(model.id, "generator.onnx");
    if (n === 1 && this.pageRunner?.ready(url)) {
      const { images, ms } = await this.pageRunner.run(url, feeds);
      return { frames: toFrames(images.data, images.dims), graphMs: ms, runner: "page" };
    }
    const { images, ms } = await this.worker.call("run", { url, feeds, outputs: ["images"] });
    if (n === 1) this.pageRunner?.note(url, ms); // the page's thread takes the live frames again once runs are fast
    return { frames: toFrames(images.data, images.dims), graphMs: ms, runner: "worker" };
  }

  /** A local run that throws (a spec part the page's sampler does not know, a graph ORT-web cannot run) moves the
   * model to the server path for good, when there is a server. */
  async #orServer(model, local, server) {
    try {
      return await local();
    } catch (err) {
      if (this.staticSite) throw err;
      this.loaded.delete(model.id);
      this.failed.set(model.id, err.message);
      return { ...(await server()), where: "server" };
    }
  }

  generate(model, payload) {
    return this.#orServer(model, () => this.#generate(model, payload), () => api.generate(payload));
  }

  traverse(model, payload) {
    return this.#orServer(model, () => this.#traverse(model, payload), () => api.traverse(payload));
  }

  /** Like POST /generate: {model, n, seed, codes} -> {body: {model, seed, images, z, codes}, ms, where, graphMs,
   * runner}; here body.images are frames (frames.js), not PNGs, graphMs the graph's own run time and runner where it
   * ran ("page" | "worker"). */
  async #generate(model, payload) {
    if (!(await this.#local(model))) {
      if (this.staticSite) throw new ApiError(`${model.id} cannot run in this browser: ${this.failed.get(model.id) ?? this.reason}`);
      return { ...(await api.generate(payload)), where: "server" };
    }
    const t0 = performance.now();
    const n = payload.n ?? 1;
    const { z, values } = drawLatent(model, payload.seed, payload.codes ?? {}, n);
    const { frames: images, graphMs, runner } = await this.#runGenerator(model, z, encodeCodes(model, values, n), n);
    const rows = [...Array(n).keys()];
    const body = { model: model.id, seed: payload.seed, images,
      z: rows.map((i) => Array.from(z.subarray(i * model.noise.dim, (i + 1) * model.noise.dim))),
      codes: rows.map((i) => Object.fromEntries(model.codes.map((code) => [code.name, values[code.name][i]]))) };
    return { body, ms: performance.now() - t0, where: "browser", graphMs, runner };
  }

  /** Like POST /traverse: each row one prior sample, each column one value of the swept code. */
  async #traverse(model, payload) {
    if (!(await this.#local(model))) {
      if (this.staticSite) throw new ApiError(`${model.id} cannot run in this browser: ${this.failed.get(model.id) ?? this.reason}`);
      return { ...(await api.traverse(payload)), where: "server" };
    }
    const t0 = performance.now();
    const { rows, cols, seed } = payload;
    // a categorical sweep has no low/high (all K columns); a range sweep is numpy's linspace(low, high, cols)
    const sweep = payload.low === undefined ? [...Array(cols).keys()]
      : [...Array(cols).keys()].map((i) => (i === cols - 1 ? payload.high : payload.low + i * ((payload.high - payload.low) / (cols - 1))));
    const { z, values } = drawLatent(model, seed, payload.codes ?? {}, rows);
    const dim = model.noise.dim;
    const zz = new Float32Array(rows * cols * dim);
    const vv = Object.fromEntries(model.codes.map((code) => [code.name, []]));
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < cols; k++) {
        zz.set(z.subarray(r * dim, (r + 1) * dim), (r * cols + k) * dim);
        for (const code of model.codes) vv[code.name].push(code.name === payload.code ? sweep[k] : values[code.name][r]);
      }
    }
    const { frames: images, graphMs, runner } = await this.#runGenerator(model, zz, encodeCodes(model, vv, rows * cols), rows * cols);
    return { body: { model: model.id, code: payload.code, rows, cols, values: sweep, images, seed }, ms: performance.now() - t0, where: "browser", graphMs, runner };
  }

  /** Like POST /infer-codes for a (model-sized) image: here when the recognizer loads and runs, else on the server
   * (a recognizer that loads but throws when run, say an operator ORT-web lacks, is left for good, as #orServer leaves
   * a generator). */
  async inferCodes(model, payload, pixels) {
    const url = this.fileUrl(model.id, "recognizer.onnx");
    const server = async () => {
      if (this.staticSite) throw new ApiError("reading codes from an image needs the in-browser recognizer, which did not load here");
      return { ...(await api.inferCodes(payload)), where: "server" };
    };
    let local = !!pixels && !this.unreadable.has(model.id) && (await this.#local(model));
    if (local) {
      local = await this.worker.call("load", { url, maxBytes: MAX_MODEL_BYTES }).then(() => true, () => false);
    }
    if (!local) return server();
    try {
      const t0 = performance.now();
      const { channels: c, height: h, width: w } = model.image;
      const outputs = await this.worker.call("run", { url, feeds: { images: { data: pixels, dims: [1, c, h, w] } }, outputs: outputNames(model) });
      const codes = readCodes(model, outputs, 0);
      // reconstruction as the service makes it: noise at the prior's centre (zeros), codes at Q's estimates
      const values = Object.fromEntries(Object.entries(codes).map(([name, info]) => [name, [info.value]]));
      const { frames: [reconstruction] } = await this.#runGenerator(model, new Float32Array(model.noise.dim), encodeCodes(model, values, 1), 1);
      return { body: { model: model.id, codes, reconstruction }, ms: performance.now() - t0, where: "browser" };
    } catch (err) {
      if (this.staticSite) throw err;
      this.unreadable.add(model.id);
      return server();
    }
  }
}
