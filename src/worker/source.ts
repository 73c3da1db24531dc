// The worker's code as one JavaScript script, bundled once when the supervisor is bundled (a Bun
// macro, imported with `with { type: "macro" }` from src/runtime/host.ts), so nothing is transpiled
// at start-up. The script runs as the body of an async function that is given `require` (see
// workerCommand in src/runtime/host.ts): the bundle may hold no `import`, `export` or `import.meta`.
// `bun build` runs as a command: Bun.build cannot be called from within a macro. Run from source
// (`bun src/cli.ts`), the macro runs at every start: its result is kept in node_modules/.cache, keyed
// by the worker's sources, so a start spawns no bundler unless the worker changed.

import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function workerJavaScript(): string {
  const dir = import.meta.dir; // not a URL's pathname: that is percent-encoded ("a%20b" for a checkout in "a b")
  const sources = readdirSync(dir)
    .filter((name) => name.endsWith(".ts"))
    .sort()
    .map((name) => readFileSync(join(dir, name), "utf8"));
  const key = Bun.hash(`${Bun.version}\n${sources.join("\n")}`).toString(36);
  const cached = join(dir, "..", "..", "node_modules", ".cache", "supervisor", `worker-${key}.js`);
  try {
    return readFileSync(cached, "utf8");
  } catch {
    // not bundled yet for these sources
  }
  const js = bundle(join(dir, "main.ts"));
  try {
    mkdirSync(join(cached, ".."), { recursive: true });
    writeFileSync(cached, js);
  } catch {
    // a read-only checkout: bundle at every start
  }
  return js;
}

// --- internal ---

function bundle(main: string): string {
  const built = Bun.spawnSync([process.execPath, "build", main, "--target=bun", "--format=esm"], {
    env: { ...process.env, BUN_BE_BUN: "1" },
    stderr: "pipe",
  });
  if (built.exitCode !== 0) throw new Error(`cannot bundle the worker: ${built.stderr.toString()}`);
  // Bun's bundle reads `require` from import.meta; the stub passes it in as a parameter instead.
  const js = built.stdout
    .toString()
    .replace("var __require = import.meta.require;", "var __require = require;");
  if (/\bimport\.meta\b|^\s*(import|export)\s/m.test(js)) {
    throw new Error(
      "the worker bundle must not use import, export or import.meta (it runs as a function body)",
    );
  }
  return js;
}
