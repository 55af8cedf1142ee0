// One-image generator runs on the page's own thread, for the live views (a slider drag), when the graph is fast.
// Why not the worker: Chromium dispatches a drag's input events at the start of a frame, right before its
// animation-frame callbacks, so an answer that comes back from a worker (a new task) misses that frame and is
// shown about one whole frame later (16.7 ms at 60 Hz, whatever the graph's speed). ORT-web's single-threaded WASM
// run finishes within the input event's own task (its promises settle as microtasks), so putImageData lands in the
// frame the input started: measured on a loaded 2-core EPYC with the int8 MNIST generator, input -> frame p50 3.7 ms
// / p95 8.2 ms on the page's thread against p50 17 / p95 24 through the worker. A graph slower than LIVE_BUDGET_MS
// (median of its last one-image runs, on either thread) would make the page janky: its live frames go to the worker
// while it is (a large model; a machine under load), and come back when its runs are fast again.
const LIVE_BUDGET_MS = 8; // half a 60 Hz frame: the rest is the page's own work (style, layout, paint)
const WINDOW = 9; // runs in the median
const WARM_RUNS = 3;

/** A few runs on zeros before the first live frame: WASM code is first compiled by the fast baseline tier, and the
 * first runs of a fresh session are several times slower (they would count against LIVE_BUDGET_MS). Input shapes
 * from the graph's metadata, symbolic dims (the batch) as 1; a graph without it is not warmed. -> the fastest run's ms (a load spike on a shared machine does not condemn a fast graph) */
async function warm(ort, session) {
  const meta = session.inputMetadata;
  if (!Array.isArray(meta) || !meta.every((m) => m.isTensor && m.type === "float32" && Array.isArray(m.shape))) return 0;
  const feeds = () => Object.fromEntries(meta.map((m) => {
    const dims = m.shape.map((d) => (typeof d === "number" && d > 0 ? d : 1));
    return [m.name, new ort.Tensor("float32", new Float32Array(dims.reduce((a, b) => a * b, 1)), dims)];
  }));
  let ms = Infinity;
  for (let i = 0; i < WARM_RUNS; i++) {
    const t0 = performance.now();
    await session.run(feeds());
    ms = Math.min(ms, performance.now() - t0);
  }
  return ms;
}

export class PageRunner {
  /** always: one-image runs here whatever their time (?runner=page: tests of this path on a loaded machine) */
  constructor(ortUrl, { always = false } = {}) {
    this.ortUrl = ortUrl;
    this.always = always;
    this.ort = null; // the runtime, imported into the page on the first model
    this.sessions = new Map(); // generator URL -> InferenceSession (ready)
    this.loads = new Map(); // generator URL -> Promise (loading or failed)
    this.times = new Map(); // generator URL -> its last WINDOW one-image run times (ms), here or in the worker
  }

  /** Starts loading a generator on the page's thread (the worker keeps painting meanwhile); resolves when done. */
  load(url, maxBytes) {
    if (!this.loads.has(url)) {
      this.loads.set(url, (async () => {
        if (!this.ort) {
          const ort = await import(this.ortUrl);
          ort.env.wasm.wasmPaths = new URL("./", this.ortUrl).href;
          ort.env.wasm.numThreads = 1; // the page's thread may not block (Atomics.wait) on WASM worker threads
          ort.env.wasm.proxy = false;
          this.ort = ort;
        }
        const response = await fetch(url); // the worker fetched it already: revalidated by its ETag (304)
        if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
        const size = Number(response.headers.get("content-length") ?? 0);
        if (maxBytes && size > maxBytes) throw new Error(`${url}: ${size} bytes, over the in-browser limit`);
        const bytes = new Uint8Array(await response.arrayBuffer());
        const session = await this.ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
        // unwarmed, the first live runs are just slower; a graph over budget once warm starts in the worker
        this.note(url, await warm(this.ort, session).catch(() => 0));
        this.sessions.set(url, session);
      })().catch(() => {})); // no page-thread session: the worker paints, as before
    }
    return this.loads.get(url);
  }

  /** Whether a live (one-image) run of this generator goes on the page's thread now. */
  ready(url) {
    const times = this.times.get(url) ?? [];
    const median = [...times].sort((a, b) => a - b)[times.length >> 1];
    return this.sessions.has(url) && (this.always || median <= LIVE_BUDGET_MS);
  }

  /** A one-image run's graph time (ms), on the page's thread or in the worker (the same single-threaded ORT). */
  note(url, ms) {
    const times = this.times.get(url) ?? [];
    times.push(ms);
    if (times.length > WINDOW) times.shift();
    this.times.set(url, times);
  }

  /** Runs the generator (feeds as the worker takes them) -> {images: {data, dims}, ms}: the graph's own time. */
  async run(url, feeds) {
    const session = this.sessions.get(url);
    const tensors = {};
    for (const [name, { data, dims }] of Object.entries(feeds)) tensors[name] = new this.ort.Tensor("float32", data, dims);
    const t0 = performance.now();
    const { images } = await session.run(tensors, ["images"]);
    const ms = performance.now() - t0;
    this.note(url, ms);
    return { images: { data: images.data, dims: images.dims }, ms };
  }
}
