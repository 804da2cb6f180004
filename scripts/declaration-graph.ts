/** The declaration files reachable from a package's exports, for the build and its checks. */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/** Module specifiers a declaration file imports: statements and `import("…")` types, not comments. */
export function declarationImports(text: string): string[] {
  const statements = text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+["']([^"']+)["']/gm);
  const types = text.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g);
  return [...statements, ...types].map((m) => m[1] as string);
}

/** Every declaration file reachable from `exports[*].types`, with the bare specifiers they import. */
export async function reachableDeclarations(
  root: string,
): Promise<{ files: Set<string>; bare: { file: string; spec: string }[] }> {
  const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8"));
  const queue = Object.values(pkg.exports as Record<string, string | { types?: string }>)
    .map((e) => (typeof e === "string" ? undefined : e.types))
    .filter((t): t is string => Boolean(t))
    .map((t) => join(root, t));
  const files = new Set<string>();
  const bare: { file: string; spec: string }[] = [];
  while (queue.length) {
    const file = queue.pop() as string;
    if (files.has(file)) continue;
    files.add(file);
    for (const spec of declarationImports(await readFile(file, "utf8"))) {
      if (spec.startsWith(".")) queue.push(join(dirname(file), spec.replace(/\.js$/, ".d.ts")));
      else bare.push({ file, spec });
    }
  }
  return { files, bare };
}
