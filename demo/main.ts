import { type LicenseState, type LoadProgress, loadModel, type SecureModel } from "../src/client/index.js";
import { drawPad } from "./draw-pad.js";
import { toMnist } from "./preprocess.js";

interface DemoConfig {
  licenseServer: string;
  credential: string;
  demoLicensorKey: string;
  publisherKey: Record<string, string>;
  /** The license server's signing keys (current, next): offline starts verify under these only. */
  licenseKeys: Record<string, string>[];
  manifest: string;
  tamperedManifest: string;
  wasmPaths: string;
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const OFFLINE_FLAG = "modelvault-demo-offline";
let model: SecureModel | undefined;
let config: DemoConfig;
let runs = 0;
let acked = 0;

function log(text: string, kind: "ok" | "error" | "" = ""): void {
  const line = document.createElement("div");
  line.className = kind;
  line.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  $("log").prepend(line);
}

function setStatus(text: string): void {
  $("status").textContent = text;
}

function showLicense(l: LicenseState): void {
  $("license-id").textContent =
    `${l.licenseId.slice(0, 10)}…${l.offline ? " (offline)" : ""}${l.revoked ? ` — refused: ${l.revoked}` : ""}`;
  $("device").textContent = `${l.deviceJkt.slice(0, 16)}…`;
  $("offline-until").textContent = l.offlineUntil
    ? new Date(l.offlineUntil * 1000).toLocaleTimeString()
    : "not allowed";
  $("quota").textContent = `${l.remaining} of ${l.allowance}`;
  $("renewals").textContent = String(l.renewals);
}

function tick(): void {
  const l = model?.license;
  if (!l) return;
  const left = l.expiresAt - Math.floor(Date.now() / 1000);
  $("expires").textContent = l.revoked
    ? "revoked"
    : left > 0
      ? `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`
      : l.offline
        ? "expired (offline allowance)"
        : "expired";
}

let shards = { loaded: 0, total: 1, decrypted: 0, totalPlain: 1 };
function onProgress(p: LoadProgress): void {
  switch (p.status) {
    case "manifest-verified":
      $("manifest").textContent =
        `${p.modelId} v${p.version}, signed by ${p.publisherKid.slice(0, 12)}…${p.fromCache ? " (from cache)" : ""}`;
      break;
    case "license-granted":
      log(`license ${p.licenseId.slice(0, 10)}… granted${p.offline ? " from cache (offline)" : ""}`, "ok");
      break;
    case "shard-downloaded":
      shards = { ...shards, loaded: p.loadedBytes, total: p.totalBytes };
      break;
    case "shard-decrypted":
      shards = { ...shards, decrypted: p.decryptedBytes, totalPlain: p.totalBytes };
      break;
    case "session-created":
      $("backend").textContent = `${p.backend.toUpperCase()} — ${p.reason}`;
      break;
    case "warning":
      log(`${p.code}: ${p.message}`);
      break;
    default:
      break;
  }
  const pct = Math.round((100 * (shards.loaded / shards.total + shards.decrypted / shards.totalPlain)) / 2);
  $("progress-bar").style.width = `${pct}%`;
  $("progress-text").textContent =
    `${(shards.loaded / 1024).toFixed(0)} of ${(shards.total / 1024).toFixed(0)} KiB downloaded and verified, ${(shards.decrypted / 1024).toFixed(0)} KiB decrypted`;
}

async function refreshServerUsage(): Promise<void> {
  try {
    const r = await fetch(`${config.licenseServer}/v1/me/usage?limit=1000`, {
      headers: { authorization: `Bearer ${config.credential}` },
    });
    const body = (await r.json()) as { usage: { count: number }[] };
    const total = body.usage.reduce((n, u) => n + u.count, 0);
    $("server-usage").textContent =
      `${body.usage.length} report${body.usage.length === 1 ? "" : "s"}, ${total} inference${total === 1 ? "" : "s"}`;
  } catch {
    $("server-usage").textContent = "unreachable";
  }
}

async function load(manifest: string, cache = true): Promise<void> {
  await model?.dispose();
  model = undefined;
  shards = { loaded: 0, total: 1, decrypted: 0, totalPlain: 1 };
  setStatus("loading…");
  const started = performance.now();
  try {
    model = await loadModel(manifest, {
      licenseServer: config.licenseServer,
      credential: () => config.credential,
      publisherKeys: [config.publisherKey as never],
      licenseKeys: config.licenseKeys as never,
      expect: { modelId: "digits" },
      wasmPaths: config.wasmPaths,
      cache,
      onProgress,
    });
    const m = model;
    showLicense(m.license);
    m.addEventListener("license-renewed", () => {
      showLicense(m.license);
      log("license renewed", "ok");
    });
    m.addEventListener("license-expiring", (e) => log(`renewal failed, retrying: ${e.detail.reason}`));
    m.addEventListener("license-revoked", (e) => {
      showLicense(m.license);
      log(`renewal refused: ${e.detail.code} — inference stopped`, "error");
      setStatus(`stopped: ${e.detail.code}`);
    });
    m.addEventListener("usage-flushed", (e) => {
      const d = e.detail;
      acked += d.sent;
      $("acked").textContent = String(acked);
      $("outbox").textContent = String(d.pending);
      void refreshServerUsage();
    });
    setStatus(`ready in ${Math.round(performance.now() - started)} ms — draw a digit`);
    log(`model ready (${m.backend})`, "ok");
    // The cache fills after the model is ready; offline restarts need it complete.
    void m.whenCached().then(
      (r) => r && log(r.complete ? "cached for offline use" : `not cached: ${r.skipped ?? "incomplete"}`),
      () => undefined,
    );
  } catch (e) {
    const err = e as { code?: string; message?: string };
    setStatus(`refused: ${err.code ?? "error"}`);
    log(`${err.code ?? "error"}: ${err.message ?? String(e)}`, "error");
  }
}

async function predict(pad: HTMLCanvasElement): Promise<void> {
  const pixels = toMnist(pad);
  if (!pixels || !model) return;
  try {
    const out = await model.run({ pixels: { data: pixels, dims: [1, 784] } });
    runs++;
    $("runs").textContent = String(runs);
    $("outbox").textContent = "runs counted; reported at the next renewal or “Send usage now”";
    const probs = Array.from(out.probabilities?.data as Float32Array);
    const best = probs.indexOf(Math.max(...probs));
    $("label").textContent = String(best);
    $("bars").replaceChildren(
      ...probs.map((p, i) => {
        const bar = document.createElement("div");
        bar.className = "bar";
        bar.style.height = `${Math.max(2, p * 100)}%`;
        bar.title = `${i}: ${(p * 100).toFixed(1)}%`;
        const label = document.createElement("span");
        label.textContent = String(i);
        bar.append(label);
        return bar;
      }),
    );
    showLicense(model.license);
  } catch (e) {
    const err = e as { code?: string; message?: string };
    $("label").textContent = "✕";
    setStatus(`refused: ${err.code}`);
    log(`run refused — ${err.code}: ${err.message}`, "error");
  }
}

async function setOffline(offline: boolean): Promise<void> {
  localStorage.setItem(OFFLINE_FLAG, offline ? "1" : "");
  const reg = await navigator.serviceWorker?.ready;
  reg?.active?.postMessage({ offline });
  await new Promise((r) => setTimeout(r, 100));
  location.reload();
}

async function main(): Promise<void> {
  // On the very first visit the page loaded before its service worker existed: once the worker
  // takes control, reload once, so the page, its scripts and styles, the Worker and onnxruntime's
  // wasm are all fetched through it and cached, and the next start needs no network at all.
  if ("serviceWorker" in navigator) {
    await navigator.serviceWorker.register("/sw.js").catch(() => undefined);
    if (!navigator.serviceWorker.controller && !sessionStorage.getItem("modelvault-demo-sw")) {
      sessionStorage.setItem("modelvault-demo-sw", "1");
      const controlled = await new Promise<boolean>((resolve) => {
        navigator.serviceWorker.addEventListener("controllerchange", () => resolve(true), { once: true });
        setTimeout(() => resolve(false), 3000);
      });
      if (controlled) {
        location.reload();
        return;
      }
    }
  }
  const offline = localStorage.getItem(OFFLINE_FLAG) === "1";
  $("offline").hidden = offline;
  $("online").hidden = !offline;
  if (offline) log("offline: the license server and model files are unreachable; running from cache");
  config = (await (await fetch("/demo-config.json")).json()) as DemoConfig;
  const pad = $<HTMLCanvasElement>("pad");
  const drawing = drawPad(pad, () => void predict(pad));
  $("clear").addEventListener("click", () => {
    drawing.clear();
    $("label").textContent = "–";
    $("bars").replaceChildren();
  });
  $("flush").addEventListener("click", async () => {
    const r = await model?.flushUsage();
    if (r) log(`usage: ${r.sent} report(s) acknowledged, ${r.pending} waiting`, r.pending ? "" : "ok");
  });
  $("renew").addEventListener("click", async () => {
    try {
      showLicense(await (model as SecureModel).renew());
    } catch (e) {
      log(`renewal refused: ${(e as { code?: string }).code}`, "error");
    }
  });
  $("revoke").addEventListener("click", async () => {
    const jkt = model?.license.deviceJkt;
    if (!jkt) return;
    const r = await fetch(`${config.licenseServer}/v1/devices/${jkt}/revoke`, {
      method: "POST",
      headers: { authorization: `Bearer ${config.demoLicensorKey}` },
    });
    log(
      r.ok
        ? "device revoked by the (demo) licensor: inference stops at the next renewal"
        : `revoke failed: HTTP ${r.status}`,
      r.ok ? "ok" : "error",
    );
  });
  // Without the cache: cached shards are verified copies of the real ones and would hide the tampering.
  $("tampered").addEventListener("click", () => void load(config.tamperedManifest, false));
  $("clear-cache").addEventListener("click", async () => {
    await model?.dispose();
    model = undefined;
    await new Promise((r) => {
      const q = indexedDB.deleteDatabase("modelvault");
      q.onsuccess = q.onerror = q.onblocked = r;
    });
    log("local cache, device keys and license cleared");
    location.reload();
  });
  $("offline").addEventListener("click", () => void setOffline(true));
  $("online").addEventListener("click", () => void setOffline(false));
  setInterval(tick, 1000);
  await load(config.manifest);
  void refreshServerUsage();
}

void main();
