// Module Web Worker running a model's ONNX graphs with onnxruntime-web (WASM), off the page's main thread so a
// slider drag never blocks input. Messages: {id, op: "init" | "load" | "run", ...} -> {id, ok, result | error}.
let ort = null;
const sessions = new Map(); // url -> Promise<InferenceSession>

async function init({ ortUrl, threads }) {
  ort = await import(ortUrl);
  // the .wasm and its .mjs loader sit beside ort.wasm.min.mjs (served under /static/ort/ or the site's static/ort/)
  ort.env.wasm.wasmPaths = new URL("./", ortUrl).href;
  // threads > 1 only where the page is cross-origin isolated (SharedArrayBuffer); the page decides
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false; // this worker already is the proxy
  return { threads: ort.env.wasm.numThreads, version: ort.env.versions?.web ?? null };
}

async function load({ url, maxBytes }) {
  if (!sessions.has(url)) {
    sessions.set(url, (async () => {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
      const size = Number(response.headers.get("content-length") ?? 0);
      if (maxBytes && size > maxBytes) throw new Error(`${url}: ${size} bytes, over the in-browser limit ${maxBytes}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    })());
    sessions.get(url).catch(() => sessions.delete(url)); // a failed load may be retried
  }
  const session = await sessions.get(url);
  return { inputs: session.inputNames, outputs: session.outputNames };
}

async function run({ url, feeds, outputs }) {
  const session = await sessions.get(url);
  const tensors = {};
  for (const [name, { data, dims }] of Object.entries(feeds)) tensors[name] = new ort.Tensor("float32", data, dims);
  const t0 = performance.now();
  const out = await session.run(tensors, outputs);
  // the graph's own time (ms), for the page's latency breakdown (worker run vs messaging vs paint)
  const result = { ms: performance.now() - t0 };
  const transfer = [];
  for (const [name, t] of Object.entries(out)) {
    // the float32 output itself, its buffer transferred (not copied): the page paints it without a PNG round trip
    result[name] = { data: t.data, dims: t.dims };
    transfer.push(t.data.buffer);
  }
  return { result, transfer };
}

self.onmessage = async ({ data }) => {
  const { id, op } = data;
  try {
    if (op === "run") {
      const { result, transfer } = await run(data);
      self.postMessage({ id, ok: true, result }, transfer);
    } else {
      self.postMessage({ id, ok: true, result: await (op === "init" ? init(data) : load(data)) });
    }
  } catch (err) {
    self.postMessage({ id, ok: false, error: String(err?.message ?? err) });
  }
};
