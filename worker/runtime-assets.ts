import { ModelVaultError } from "../src/core/errors.js";
import { ORT_RUNTIME_FILES } from "../src/core/ort-runtime.js";

/**
 * Checks that onnxruntime-web's runtime files are served at `wasmPaths`, so a missing file
 * fails the load at once, naming its URL, before a license is requested (which would spend a
 * device slot and allowance on a load that cannot finish). A 404, or an HTML page where a
 * script or binary belongs (the usual single-page-app fallback), is refused. A network error
 * proves nothing (offline with a cached app shell, say): onnxruntime reports it if it matters.
 */
export async function checkRuntimeAssets(wasmPaths: string | undefined, signal?: AbortSignal): Promise<void> {
  const here = (globalThis as { location?: { href: string } }).location?.href;
  if (!wasmPaths || !here) return;
  const base = new URL(wasmPaths, here);
  await Promise.all(
    ORT_RUNTIME_FILES.map(async (name) => {
      const url = new URL(name, base).toString();
      const res = await fetch(url, { method: "HEAD", signal: signal ?? null }).catch(() => undefined);
      if (!res) return;
      const type = res.headers.get("content-type") ?? "";
      if (!res.ok || type.startsWith("text/html"))
        throw new ModelVaultError(
          "ERR_RUNTIME_ASSET_MISSING",
          `onnxruntime-web's ${name} is not served at ${url} (HTTP ${res.status}${type ? `, ${type}` : ""}): serve it there, or set wasmPaths to where it is`,
          { url, status: res.status },
        );
    }),
  );
}
