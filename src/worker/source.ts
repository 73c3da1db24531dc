// The worker's code as one JavaScript script, bundled once when the supervisor is bundled (a Bun
// macro, imported with `with { type: "macro" }` from src/runtime/host.ts), so nothing is transpiled
// at start-up. The script runs as the body of an async function that is given `require` (see
// workerCommand in src/runtime/host.ts): the bundle may hold no `import`, `export` or `import.meta`.
// `bun build` runs as a command: Bun.build cannot be called from within a macro.

export function workerJavaScript(): string {
  const main = new URL("./main.ts", import.meta.url).pathname;
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
