// The portable seeded sampler: the same seed gives the same z and codes here and in the service, bit for bit
// (spec/latent.py PortableRng documents the stream; tests/spec/test_portable_sampler.py runs both and compares).
// splitmix64 in BigInt: draw k is mix(seed + k * GAMMA) mod 2**64, its top 53 bits u = bits * 2**-53 in [0, 1).
// A request's draw: z (n x dim, row-major) first, then each code's n values in spec order; the codes the page
// fixes are overwritten afterwards, so fixing one never shifts the stream of the others.

const MASK = (1n << 64n) - 1n;
const GAMMA = 0x9e3779b97f4a7c15n;

export class PortableRng {
  constructor(seed) {
    this.state = BigInt(seed) & MASK;
    this.count = 0n;
  }

  /** The next draw as a float64 in [0, 1). */
  u() {
    this.count += 1n;
    let x = (this.state + this.count * GAMMA) & MASK;
    x = ((x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
    x = ((x ^ (x >> 27n)) * 0x94d049bb133111ebn) & MASK;
    x ^= x >> 31n;
    return Number(x >> 11n) * 2 ** -53;
  }

  /** n values of low + (high - low) * u (float64, one draw each). */
  uniform(low, high, n) {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = low + (high - low) * this.u();
    return out;
  }

  /** n integers low + floor(u * (high - low)). */
  integers(low, high, n) {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = low + Math.floor(this.u() * (high - low));
    return out;
  }

  /** n standard normal values, Box-Muller on two draws each (see PortableRng in spec/latent.py on rounding). */
  standardNormal(n) {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const u1 = this.u();
      const u2 = this.u();
      out[i] = Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
    }
    return out;
  }
}

// Per part of the spec (GET /models: noise and codes): how it is drawn and how it enters G's input c, mirroring
// Noise/Categorical/Continuous.sample_np and encode_np in spec/latent.py.
const NOISE = {
  uniform: (rng, n) => rng.uniform(-1, 1, n),
  normal: (rng, n) => rng.standardNormal(n),
};
const CODES = {
  categorical: {
    sample: (code, rng, n) => rng.integers(0, code.categories, n),
    width: (code) => code.categories,
    encode: (code, value, out, at) => { out[at + value] = 1; },
  },
  continuous: {
    sample: (code, rng, n) => rng.uniform(code.low, code.high, n),
    width: () => 1,
    encode: (code, value, out, at) => { out[at] = value; },
  },
};
const part = (code) => {
  const p = CODES[code.type];
  if (!p) throw new Error(`unknown code type ${code.type}`);
  return p;
};

/** The prior draw of a seed: {z: Float32Array(n * dim), values: {code: Float64Array(n)}} (spec.sample_seeded). */
export function sampleSeeded(model, seed, n = 1) {
  const rng = new PortableRng(seed);
  const z = Float32Array.from(NOISE[model.noise.distribution](rng, n * model.noise.dim));
  const values = {};
  for (const code of model.codes) values[code.name] = part(code).sample(code, rng, n);
  return { z, values };
}

/** Width of G's code input c (spec.c_dim). */
export const codeWidth = (model) => model.codes.reduce((w, code) => w + part(code).width(code), 0);

/** values {code: number[] (n)} -> c Float32Array(n * c_dim), codes in spec order (spec.encode_np). */
export function encodeCodes(model, values, n) {
  const width = codeWidth(model);
  const c = new Float32Array(n * width);
  for (let i = 0; i < n; i++) {
    let at = i * width;
    for (const code of model.codes) {
      part(code).encode(code, values[code.name][i], c, at);
      at += part(code).width(code);
    }
  }
  return c;
}

/** What POST /generate draws for {seed, codes, n}: the prior draw with the given codes overwritten (generate.draw). */
export function drawLatent(model, seed, given, n = 1) {
  const { z, values } = sampleSeeded(model, seed, n);
  for (const [name, v] of Object.entries(given)) values[name] = new Float64Array(n).fill(v);
  return { z, values };
}

/** Q's outputs for image i -> each code's reading, as POST /infer-codes answers (Categorical/Continuous.read). */
export function readCodes(model, outputs, i = 0) {
  const codes = {};
  for (const code of model.codes) codes[code.name] = part(code).read(code, outputs, i);
  return codes;
}
CODES.categorical.read = (code, outputs, i) => {
  const k = code.categories;
  const logits = Array.from(outputs[`${code.name}.logits`].data.slice(i * k, (i + 1) * k), Number);
  const top = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - top));
  const sum = e.reduce((a, b) => a + b, 0);
  const probabilities = e.map((v) => v / sum);
  return { type: "categorical", probabilities, value: probabilities.indexOf(Math.max(...probabilities)) };
};
CODES.continuous.read = (code, outputs, i) => {
  const mean = Number(outputs[`${code.name}.mean`].data[i]);
  const { hard_min: lo, hard_max: hi } = code.control; // the bounds a request may set (spec: Continuous.bounds)
  return { type: "continuous", mean, std: Number(outputs[`${code.name}.std`].data[i]), value: Math.min(Math.max(mean, lo), hi) };
};

/** The recognizer's output names in order (spec.output_names). */
export const outputNames = (model) => [...model.codes.flatMap((code) => part(code).outputs(code)), "d_logit"];
CODES.categorical.outputs = (code) => [`${code.name}.logits`];
CODES.continuous.outputs = (code) => [`${code.name}.mean`, `${code.name}.std`];
