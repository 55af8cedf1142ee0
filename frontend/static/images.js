// PNG downloads (the only PNGs the page encodes in the live views): the current image or the traversal grid, upscaled with nearest-neighbour so the
// pixels stay crisp.

/** `source`: an <img> or the main view's canvas (at the image's own size). */
export function upscaledCanvas(source, scale) {
  const canvas = document.createElement("canvas");
  canvas.width = (source.naturalWidth ?? source.width) * scale;
  canvas.height = (source.naturalHeight ?? source.height) * scale;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  return canvas;
}

/** rows × cols tiles (row-major canvases: the grid's cells, at the image's own size), `scale`× each, with a
 * 1-tile-pixel gap between them. */
export function gridCanvas(tiles, rows, cols, scale) {
  const w = tiles[0].width * scale;
  const h = tiles[0].height * scale;
  const gap = scale;
  const canvas = document.createElement("canvas");
  canvas.width = cols * w + (cols - 1) * gap;
  canvas.height = rows * h + (rows - 1) * gap;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  tiles.forEach((tile, i) => ctx.drawImage(tile, (i % cols) * (w + gap), Math.floor(i / cols) * (h + gap), w, h));
  return canvas;
}

export function downloadCanvas(canvas, filename) {
  canvas.toBlob((blob) => {
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = filename;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }, "image/png");
}
