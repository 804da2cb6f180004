// The demo's service worker: keeps the app shell (pages, scripts, onnxruntime's wasm) so the demo
// starts offline after a first visit. Encrypted model files are not kept here: the runtime keeps
// their ciphertext in IndexedDB itself. "Go offline" sets a flag that makes the license server
// and the model files unreachable, as a lost connection would.
const SHELL = "modelvault-demo-shell-v1";
const FLAGS = "modelvault-demo-flags";

// onnxruntime-web's runtime, fetched up front: the Worker imports it by URL (with Vite's ?import
// marker in development), which is easy to miss when caching only what passes by.
const ORT = ["ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm"];
const ORT_URLS = ORT.flatMap((f) => [`/ort/${f}`, `/ort/${f}?import`]);

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(SHELL)
      .then((cache) => cache.addAll(ORT_URLS))
      .catch(() => undefined)
      .then(() => self.skipWaiting()),
  );
});
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("message", (event) => {
  const offline = event.data?.offline === true;
  event.waitUntil(
    caches
      .open(FLAGS)
      .then((c) => (offline ? c.put("/__offline", new Response("1")) : c.delete("/__offline"))),
  );
});

async function isOffline() {
  return Boolean(await (await caches.open(FLAGS)).match("/__offline"));
}

async function handle(request, event) {
  const url = new URL(request.url);
  const modelOrLicense = url.origin !== self.location.origin || url.pathname.startsWith("/models/");
  if (modelOrLicense) {
    if (await isOffline()) return Response.error();
    return fetch(request);
  }
  const cache = await caches.open(SHELL);
  try {
    const response = await fetch(request);
    // Store in the background: awaiting the copy before answering would hold the page up.
    if (response.ok && response.type === "basic")
      event.waitUntil(cache.put(request, response.clone()).catch(() => undefined));
    return response;
  } catch {
    // ignoreVary: servers answer with `Vary: Origin` (Vite's CORS middleware does), and a
    // worker's module import carries an Origin header the cached request lacked: matching on
    // it made onnxruntime's import of its .mjs miss the cache offline.
    return (await cache.match(request, { ignoreVary: true })) ?? Response.error();
  }
}

self.addEventListener("fetch", (event) => {
  if (event.request.method !== "GET" && new URL(event.request.url).origin === self.location.origin) return;
  if (event.request.method !== "GET") {
    event.respondWith(isOffline().then((off) => (off ? Response.error() : fetch(event.request))));
    return;
  }
  event.respondWith(handle(event.request, event));
});
