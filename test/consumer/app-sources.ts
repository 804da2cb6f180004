/**
 * The sources of the consumer apps: what a user writes, using only the public API. The Vite
 * app is TypeScript (checked by `tsc --noEmit`, strict, before `vite build`) and also carries
 * the README's snippets verbatim; the webpack app is plain JavaScript.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { REPO } from "../../scripts/pack-tarball.js";

/** The page's test hook: load, run once, dispose; report what the app saw. */
const MAIN_TS = `import { isModelVaultError, type JwkInput, type LoadProgress, loadModel } from "modelvault";

export interface ClassifyConfig {
  manifest: string;
  licenseServer: string;
  credential: string;
  publisherKey: JwkInput;
  input: number[];
  dims: number[];
}

async function classify(config: ClassifyConfig) {
  const statuses: LoadProgress["status"][] = [];
  try {
    const model = await loadModel(config.manifest, {
      licenseServer: config.licenseServer,
      credential: config.credential,
      publisherKeys: [config.publisherKey],
      backend: "wasm",
      onProgress: (p) => statuses.push(p.status),
    });
    const statusesAtResolve = [...statuses];
    const out = await model.run({ pixels: { data: new Float32Array(config.input), dims: config.dims } });
    const probabilities = out["probabilities"];
    await model.dispose();
    return {
      ok: true as const,
      probabilities: Array.from((probabilities?.data ?? []) as Float32Array),
      statusesAtResolve,
      backend: model.backend,
      isolated: globalThis.crossOriginIsolated === true,
    };
  } catch (e) {
    return { ok: false as const, code: isModelVaultError(e) ? e.code : String(e), statuses };
  }
}

declare global {
  interface Window {
    modelvaultApp: { classify: typeof classify };
  }
}
window.modelvaultApp = { classify };
document.title = "app ready";
`;

const MAIN_JS = `import { isModelVaultError, loadModel } from "modelvault";

async function classify(config) {
  const statuses = [];
  try {
    const model = await loadModel(config.manifest, {
      licenseServer: config.licenseServer,
      credential: config.credential,
      publisherKeys: [config.publisherKey],
      backend: "wasm",
      onProgress: (p) => statuses.push(p.status),
    });
    const statusesAtResolve = [...statuses];
    const out = await model.run({ pixels: { data: new Float32Array(config.input), dims: config.dims } });
    await model.dispose();
    return { ok: true, probabilities: Array.from(out.probabilities.data), statusesAtResolve,
      backend: model.backend, isolated: globalThis.crossOriginIsolated === true };
  } catch (e) {
    return { ok: false, code: isModelVaultError(e) ? e.code : String(e), statuses };
  }
}
window.modelvaultApp = { classify };
document.title = "app ready";
`;

const INDEX_HTML = (script: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>app</title></head><body><script type="module" src="${script}"></script></body></html>\n`;

const TSCONFIG = JSON.stringify(
  {
    compilerOptions: {
      target: "ES2022",
      module: "ESNext",
      moduleResolution: "bundler",
      lib: ["ES2022", "DOM", "DOM.Iterable"],
      types: [],
      strict: true,
      noUncheckedIndexedAccess: true,
      noPropertyAccessFromIndexSignature: true,
      exactOptionalPropertyTypes: true,
      verbatimModuleSyntax: true,
      resolveJsonModule: true,
      isolatedModules: true,
      skipLibCheck: false,
      noEmit: true,
    },
    include: ["src"],
  },
  null,
  2,
);

/** The README's \`\`\`ts blocks of "Use it in your own app", in order. */
export async function readmeSnippets(): Promise<string[]> {
  const readme = await readFile(join(REPO, "README.md"), "utf8");
  const start = readme.indexOf("## Use it in your own app");
  const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
}

export async function viteAppFiles(publisherKey: object): Promise<Record<string, string>> {
  const snippets = await readmeSnippets();
  const config = snippets.find((s) => s.startsWith("// vite.config.ts"));
  const pages = snippets.filter((s) => s !== config);
  if (!config || pages.length === 0) throw new Error("README: the vite.config.ts or page snippet moved");
  return {
    "vite.config.ts": config,
    "index.html": INDEX_HTML("/src/main.ts"),
    "tsconfig.json": TSCONFIG,
    "src/main.ts": MAIN_TS,
    // What the README's page snippet takes from the app around it.
    "src/app-globals.d.ts":
      "declare const session: { apiKeyOrIdToken(): string };\ndeclare function showPaywall(code: string): void;\n",
    "src/publisher.public.jwk.json": JSON.stringify(publisherKey),
    ...Object.fromEntries(pages.map((s, i) => [`src/readme-${i + 1}.ts`, s])),
  };
}

export function webpackAppFiles(): Record<string, string> {
  return {
    "webpack.config.mjs": `import { fileURLToPath } from "node:url";
export default {
  mode: "production",
  entry: "./src/main.js",
  output: { path: fileURLToPath(new URL("./dist", import.meta.url)), filename: "[name].js", publicPath: "/" },
  // The README's recipe: onnxruntime-web's build without a second copy of its 28 MB binary.
  resolve: { conditionNames: ["onnxruntime-web-use-extern-wasm", "..."] },
  performance: { hints: false },
};
`,
    "src/main.js": MAIN_JS,
    "dist/index.html": INDEX_HTML("/main.js"),
  };
}
