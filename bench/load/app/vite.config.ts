// The benchmark app, built like a user's: Vite with the modelvault plugin, both pages
// cross-origin isolated, onnxruntime-web's runtime files emitted at /ort/.

import { modelvault } from "modelvault/vite";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [modelvault({ crossOriginIsolation: true })],
  build: {
    rollupOptions: { input: { secure: "secure.html", plain: "plain.html" } },
  },
});
