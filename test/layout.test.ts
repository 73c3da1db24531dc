// The layers of src/ and the direction of their imports (docs/ARCHITECTURE.md). Read from the source
// text, so a type-only import counts as much as any other: a layer that names another's types
// depends on it all the same.
//   core      the pure lifecycle: decisions, its vocabulary, timings, exit codes; imports nothing else
//   os        what Linux offers (/proc, reaping, pidfile, users, CPUs, ports, host settings): core only
//   control   how a running supervisor is seen and reached (socket, admin, metrics): core, os
//   config    what to run (option table, sources, config file): core, os, control's types
//   runtime   the running supervisor (start-up, loop, host, signals, watch, log): all of the above
//   commands  one file per subcommand: all of the above; cli.ts: the commands
//   worker    runs inside each worker process, evaluated alone: nothing outside src/worker
// Outside src/worker only the worker's contract may be imported (protocol.ts, metrics-layout.ts:
// pure data that imports nothing) and its source, bundled at build time as a macro.

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = join(import.meta.dir, "..");
const SRC = join(ROOT, "src");

/** Layer → the layers it may import (besides itself). */
const MAY_IMPORT: Record<string, string[]> = {
  core: [],
  os: ["core"],
  control: ["core", "os"],
  config: ["core", "os", "control"],
  runtime: ["core", "os", "control", "config"],
  commands: ["core", "os", "control", "config", "runtime"],
  "cli.ts": ["core", "runtime", "commands"],
  worker: [],
};
const WORKER_CONTRACT = ["src/worker/protocol.ts", "src/worker/metrics-layout.ts"];

interface Import {
  from: string;
  to: string;
  macro: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** Every relative import of a file (static, type-only, re-export and dynamic), resolved to a path
 * from the repository root. */
function importsOf(file: string): Import[] {
  const text = readFileSync(file, "utf8").replace(/^\s*\/\/.*$/gm, "");
  const found: Import[] = [];
  const statics = /(?:^|\n)\s*(?:import|export)\s[^;]*?\bfrom\s*["'](\.[^"']+)["']([^;\n]*)/g;
  const dynamic = /\bimport\(\s*["'](\.[^"']+)["']\s*\)/g;
  for (const [, spec, rest] of text.matchAll(statics)) {
    found.push({
      from: rel(file),
      to: rel(resolve(dirname(file), spec as string)),
      macro: /macro/.test(rest ?? ""),
    });
  }
  for (const [, spec] of text.matchAll(dynamic)) {
    found.push({ from: rel(file), to: rel(resolve(dirname(file), spec as string)), macro: false });
  }
  return found;
}

const rel = (path: string) => relative(ROOT, path);
/** "src/os/proc.ts" → "os", "src/cli.ts" → "cli.ts", "package.json" → undefined. */
const layerOf = (path: string) => (path.startsWith("src/") ? path.split("/")[1] : undefined);

const files = sourceFiles(SRC);
const imports = files.flatMap(importsOf);

describe("layout", () => {
  test("every file of src/ is in a layer", () => {
    const loose = files.map(rel).filter((f) => !((layerOf(f) ?? "") in MAY_IMPORT));
    expect(loose).toEqual([]);
  });

  test("the import reader sees imports (guards the test itself)", () => {
    expect(imports).toContainEqual({
      from: "src/runtime/loop.ts",
      to: "src/core/lifecycle.ts",
      macro: false,
    });
    expect(imports).toContainEqual({ from: "src/runtime/host.ts", to: "src/worker/source.ts", macro: true });
    expect(imports).toContainEqual({
      from: "src/runtime/host.ts",
      to: "src/worker/protocol.ts",
      macro: false,
    });
    expect(
      imports.some((i) => i.from === "src/runtime/start.ts" && i.to === "src/control/request-metrics.ts"),
    ).toBe(true);
  });

  test("each layer imports only the layers below it", () => {
    const wrong = imports
      .filter(({ from, to }) => {
        const a = layerOf(from) as string;
        const b = layerOf(to);
        if (b === undefined || b === a || b === "worker") return false;
        return !MAY_IMPORT[a]?.includes(b);
      })
      .map(({ from, to }) => `${from} -> ${to}`);
    expect(wrong).toEqual([]);
  });

  test("src/core and src/worker import nothing outside themselves", () => {
    const wrong = imports
      .filter(({ from, to }) => {
        const a = layerOf(from);
        return (a === "core" || a === "worker") && layerOf(to) !== a;
      })
      .map(({ from, to }) => `${from} -> ${to}`);
    expect(wrong).toEqual([]);
  });

  test("outside src/worker, only its contract is imported, and its source only as a build-time macro", () => {
    const wrong = imports
      .filter(({ from, to, macro }) => {
        if (layerOf(from) === "worker" || layerOf(to) !== "worker") return false;
        if (WORKER_CONTRACT.includes(to)) return false;
        return !(to === "src/worker/source.ts" && macro);
      })
      .map(({ from, to }) => `${from} -> ${to}`);
    expect(wrong).toEqual([]);
  });

  test("the worker's contract is pure data: it imports nothing", () => {
    expect(imports.filter(({ from }) => WORKER_CONTRACT.includes(from))).toEqual([]);
  });
});
