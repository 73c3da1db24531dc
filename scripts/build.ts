// `bun run build`: writes the standalone executable dist/supervisor.
// The supervisor's own process runs no app code: only the config file and its hooks (onReady,
// onWorkerExit), which it imports itself. So it loads no bunfig.toml (a preload there would run in
// the parent, before the signals are ours) and no .env; workers run as the bun CLI (BUN_BE_BUN=1) and
// get the app's bunfig, tsconfig, package.json and .env exactly as `bun app.ts` would (docs/DESIGN.md).
// Never `strip` the result: that removes the embedded program and leaves plain bun.
import { $ } from "bun";

/** Shared with scripts/release.ts. `--bytecode` (which needs `--format=esm` for our top-level await)
 * ships pre-parsed code: `supervisor --version` went from 22 ms to 10 ms, and every start with it. */
export const BUILD_FLAGS = [
  "--compile",
  "--minify",
  "--bytecode",
  "--format=esm",
  "--no-compile-autoload-bunfig",
  "--no-compile-autoload-dotenv",
];

if (import.meta.main) {
  const outfile = process.argv[2] ?? "dist/supervisor";
  const started = performance.now();
  await $`bun build ${BUILD_FLAGS} src/cli.ts --outfile ${outfile}`.quiet();
  const { size } = Bun.file(outfile);
  console.log(
    `built ${outfile} (${(size / 1e6).toFixed(1)} MB) in ${Math.round(performance.now() - started)} ms`,
  );
}
