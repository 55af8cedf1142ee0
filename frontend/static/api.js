// Thin client for the service's JSON API. Every failure becomes an ApiError whose message is
// words a person can read: the server's {"detail": ...}, or why the server could not be reached.

export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = "ApiError";
    this.status = status; // 0: no HTTP answer at all
  }
}

function detailText(detail) {
  if (typeof detail === "string") return detail;
  // FastAPI validation errors: [{loc: [...], msg: "..."}]
  if (Array.isArray(detail)) {
    return detail.map((d) => (d.loc ? `${d.loc.filter((p) => p !== "body").join(".")}: ` : "") + (d.msg ?? JSON.stringify(d))).join("; ");
  }
  return JSON.stringify(detail);
}

// The service's root: the folder above static/ (this file's), so the API is found where the page was served from,
// under a reverse proxy's prefix (/explorer/models) as at the root; "/models" was the proxy's own root.
const ROOT = new URL("../", import.meta.url);

async function request(path, init = {}) {
  const t0 = performance.now();
  let response;
  try {
    response = await fetch(new URL(path.replace(/^\//, ""), ROOT), init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(`Cannot reach the server (${path}): ${err.message}`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    // non-JSON answer (proxy page, empty body): reported below by status
  }
  const ms = performance.now() - t0;
  if (!response.ok) {
    const message = body && body.detail !== undefined ? detailText(body.detail) : `${response.status} ${response.statusText}`;
    throw new ApiError(`Server error ${response.status} on ${path}: ${message}`, response.status);
  }
  if (body === null) throw new ApiError(`Server sent an unreadable answer on ${path}`, response.status);
  return { body, ms };
}

export const api = {
  models: () => request("/models"),
  post: (path, payload, signal) =>
    request(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload), signal }),
  generate: (payload) => api.post("/generate", payload),
  traverse: (payload) => api.post("/traverse", payload),
  inferCodes: (payload) => api.post("/infer-codes", payload),
};

export const pngSrc = (b64) => (b64.startsWith("data:") ? b64 : `data:image/png;base64,${b64}`);
