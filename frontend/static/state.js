// The page state lives in the URL hash, so a link reproduces the picture and back/forward walk
// through changes. Codes are stored as "c.<name>=<value>" so code names never collide with keys.
//   #model=mnist&seed=42&view=explore&c.digit=3&c.c1=0.5&c.c2=-1&grid=c1&vs=mnist-gan

export const VIEWS = ["explore", "traverse", "compare", "infer", "factors"];

export function defaultState() {
  return { model: null, seed: null, view: "explore", codes: {}, grid: null, vs: null, rows: 6, cols: 7 };
}

export function parseHash(hash) {
  const state = defaultState();
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  for (const [key, raw] of params) {
    if (key.startsWith("c.")) {
      const value = Number(raw);
      if (raw !== "" && Number.isFinite(value)) state.codes[key.slice(2)] = value;
    } else if (key === "seed" || key === "rows" || key === "cols") {
      // whole numbers only ("1e20" is not read as 1); the page checks the bounds against what the API takes
      if (/^\d{1,16}$/.test(raw)) state[key] = Number(raw);
    } else if (key === "view") {
      if (VIEWS.includes(raw)) state.view = raw;
    } else if (key === "model" || key === "grid" || key === "vs") {
      state[key] = raw || null;
    }
  }
  return state;
}

// a code's value as the page uses it and writes it in the link: 3 decimals, so a link reproduces the picture made
// from it (the state once kept full precision, the link 3 decimals and the field 2)
export const CODE_DECIMALS = 3;
export const roundCode = (v) => Number.parseFloat(Number(v).toFixed(CODE_DECIMALS));

export function toHash(state) {
  const params = new URLSearchParams();
  if (state.model) params.set("model", state.model);
  if (state.seed !== null && state.seed !== undefined) params.set("seed", String(state.seed));
  params.set("view", state.view);
  for (const [name, value] of Object.entries(state.codes)) params.set(`c.${name}`, String(roundCode(value)));
  if (state.grid) params.set("grid", state.grid);
  if (state.view === "traverse") {
    params.set("rows", String(state.rows));
    params.set("cols", String(state.cols));
  }
  if (state.vs) params.set("vs", state.vs);
  return `#${params.toString()}`;
}
