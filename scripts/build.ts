// `bun run build`: writes the standalone executable dist/supervisor.
// The supervisor's own process runs no app code: only the config file and its hooks (onReady,
// onWorkerExit), which it imports itself. So it loads no bunfig.toml (a preload there would run in
// the parent, before the signals are ours) and no .env; workers run as the bun CLI (BUN_BE_BUN=1) and
// get the app's bunfig, tsconfig, package.json and .env exactly as `bun app.ts` would (docs/DESIGN.md).
// Never `strip` the result: that removes the embedded program and leaves plain bun.
//
// `bun scripts/build.ts --record-order` also re-records scripts/supervisor.order (see below) from a
// `supervisor run` of the bundled example, then builds again with it.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { $ } from "bun";

/** The bytecode layout profile (`--bytecode-order`): the functions a `supervisor run` uses, placed
 * first in the embedded program, so the supervisor keeps 0.7 MB of it resident instead of 2.1 MB
 * (docs/BENCHMARKS.md). Functions are matched by a hash of their syntax: an older profile still
 * applies, and what changed since is placed after it. */
const ORDER_FILE = join(import.meta.dir, "supervisor.order");

/** Shared with scripts/release.ts. `--bytecode` (which needs `--format=esm` for our top-level await)
 * ships pre-parsed code: `supervisor --version` went from 22 ms to 10 ms, and every start with it. */
export const BUILD_FLAGS = [
  "--compile",
  "--minify",
  "--bytecode",
  "--format=esm",
  "--no-compile-autoload-bunfig",
  "--no-compile-autoload-dotenv",
  // The parent's JIT policy (src/cli.ts) from the first instruction, not only once cli() runs: the
  // bundle's module set-up stays in the interpreter too (parent −0.3 MB PSS, docs/BENCHMARKS.md). A
  // worker runs this binary as the bun CLI, which the baked policy does not reach (measured: a loop
  // that takes 74 ms under ×1000 took 15–17 ms as bun under this binary and under one without it).
  "--compile-jit-policy=1000",
  ...(existsSync(ORDER_FILE) ? [`--bytecode-order=${ORDER_FILE}`] : []),
];

if (import.meta.main) {
  const record = process.argv.includes("--record-order");
  const outfile = process.argv.slice(2).find((a) => !a.startsWith("--")) ?? "dist/supervisor";
  const started = performance.now();
  await $`bun build ${BUILD_FLAGS} src/cli.ts --outfile ${outfile}`.quiet();
  if (record) {
    await recordOrder(outfile);
    await $`bun build ${BUILD_FLAGS.filter((f) => !f.startsWith("--bytecode-order"))} --bytecode-order=${ORDER_FILE} src/cli.ts --outfile ${outfile}`.quiet();
  }
  const { size } = Bun.file(outfile);
  console.log(
    `built ${outfile} (${(size / 1e6).toFixed(1)} MB) in ${Math.round(performance.now() - started)} ms${record ? `, with a new ${ORDER_FILE}` : ""}`,
  );
}

/** Run the bundled example under the binary until it is ready, send it a request and TERM: the
 * profile is written when the supervisor exits. */
async function recordOrder(binary: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "supervisor-order-"));
  const port = String(20_000 + Math.floor(Math.random() * 10_000));
  const proc = Bun.spawn([binary, "run", "examples/hello/app.ts", "-w", "2", "-p", port, "-H", "127.0.0.1"], {
    env: { ...process.env, BUN_BYTECODE_ORDER_OUT: join(dir, "%p.order") },
    stdout: "pipe",
    stderr: "inherit",
  });
  let seen = "";
  for await (const chunk of proc.stdout.pipeThrough(new TextDecoderStream())) {
    seen += chunk;
    if (/ready: \d+ workers/.test(seen)) break;
  }
  await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text());
  proc.kill("SIGTERM");
  if ((await proc.exited) !== 0) throw new Error(`recording run failed:\n${seen}`);
  await Bun.write(ORDER_FILE, Bun.file(join(dir, `${proc.pid}.order`)));
  rmSync(dir, { recursive: true, force: true });
}
