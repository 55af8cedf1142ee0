// Generated images as the page holds them: a service answer is a base64 PNG string, an in-browser one a float frame
// {data: Float32Array (C*H*W, values in [0, 1]), channels, height, width} straight from the worker's output tensor.
// The live views paint a frame with putImageData on a canvas the size of the image (CSS scales it, pixelated): no
// PNG encode + decode per frame. PNGs are made from a frame only for an <img> (gallery, grid) or a download.
import { pngSrc } from "./api.js";

export const isFrame = (image) => typeof image === "object" && image !== null && "data" in image;

/** One [0, 1] float -> 0..255 exactly as the service's PNG encoder (backend/core/images.py: clip, x * 255 + 0.5,
 * floor, all in float32): Math.fround after each float32 operation, so the page's pixels equal the service's. */
const byte = (x) => Math.floor(Math.fround(Math.fround(Math.min(1, Math.max(0, x)) * 255) + 0.5));

/** (C, H, W) floats -> RGBA ImageData (grey: R = G = B; alpha opaque). */
export function toImageData({ data, channels: c, height: h, width: w }) {
  const out = new ImageData(w, h);
  const px = out.data;
  const plane = h * w;
  if (c === 1) {
    for (let p = 0, q = 0; p < plane; p++, q += 4) {
      const v = byte(data[p]);
      px[q] = v;
      px[q + 1] = v;
      px[q + 2] = v;
      px[q + 3] = 255;
    }
  } else {
    for (let p = 0, q = 0; p < plane; p++, q += 4) {
      px[q] = byte(data[p]);
      px[q + 1] = byte(data[plane + p]);
      px[q + 2] = byte(data[2 * plane + p]);
      px[q + 3] = 255;
    }
  }
  return out;
}

function fit(canvas, w, h) {
  // assigning width/height clears the canvas and reallocates its backing store: only when the size changes
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
}

/** Paints a frame (synchronously: putImageData) or a server PNG (after decoding it) onto `canvas`, at the image's
 * own size. Resolves once the pixels are on the canvas; the caller's next animation frame shows them. */
export async function paint(canvas, image) {
  if (isFrame(image)) {
    fit(canvas, image.width, image.height);
    canvas.getContext("2d").putImageData(toImageData(image), 0, 0);
  } else {
    const img = new Image();
    img.src = pngSrc(image);
    await img.decode(); // decoded off the main thread; the canvas keeps the previous picture meanwhile
    fit(canvas, img.naturalWidth, img.naturalHeight);
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(img, 0, 0);
  }
  canvas.dataset.painted = "";
}

let scratch = null;
/** A URL an <img> can show: the service's PNG as is, a frame encoded to PNG (for the non-live views and downloads). */
export function imageSrc(image) {
  if (!isFrame(image)) return pngSrc(image);
  scratch ??= document.createElement("canvas");
  fit(scratch, image.width, image.height);
  scratch.getContext("2d").putImageData(toImageData(image), 0, 0);
  return scratch.toDataURL("image/png");
}
