/**
 * Turns the drawing into what the model was trained on (MNIST): white ink on black, the digit
 * scaled to fit 20x20 with its aspect kept, centred by its centre of mass in a 28x28 image,
 * values in [0, 1]. Returns undefined for an empty pad.
 */
export function toMnist(canvas: HTMLCanvasElement): Float32Array | undefined {
  const { width, height } = canvas;
  const src = (canvas.getContext("2d") as CanvasRenderingContext2D).getImageData(0, 0, width, height).data;
  let minX = width;
  let minY = height;
  let maxX = -1;
  let maxY = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if ((src[(y * width + x) * 4] as number) > 25) {
        minX = Math.min(minX, x);
        maxX = Math.max(maxX, x);
        minY = Math.min(minY, y);
        maxY = Math.max(maxY, y);
      }
    }
  }
  if (maxX < 0) return undefined;
  const w = maxX - minX + 1;
  const h = maxY - minY + 1;
  const scale = 20 / Math.max(w, h);
  const small = document.createElement("canvas");
  small.width = 28;
  small.height = 28;
  const ctx = small.getContext("2d", { willReadFrequently: true }) as CanvasRenderingContext2D;
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, 28, 28);
  ctx.imageSmoothingQuality = "high";
  const dw = Math.max(1, Math.round(w * scale));
  const dh = Math.max(1, Math.round(h * scale));
  ctx.drawImage(canvas, minX, minY, w, h, Math.round((28 - dw) / 2), Math.round((28 - dh) / 2), dw, dh);
  const pixels = ctx.getImageData(0, 0, 28, 28).data;
  const gray = new Float32Array(784);
  let mass = 0;
  let cx = 0;
  let cy = 0;
  for (let i = 0; i < 784; i++) {
    const v = (pixels[i * 4] as number) / 255;
    gray[i] = v;
    mass += v;
    cx += v * (i % 28);
    cy += v * Math.floor(i / 28);
  }
  const dx = Math.round(14 - cx / mass);
  const dy = Math.round(14 - cy / mass);
  const out = new Float32Array(784);
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const sx = x - dx;
      const sy = y - dy;
      if (sx >= 0 && sx < 28 && sy >= 0 && sy < 28) out[y * 28 + x] = gray[sy * 28 + sx] as number;
    }
  }
  return out;
}
