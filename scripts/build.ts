// `bun run build`: writes the standalone executable dist/supervisor.
// The supervisor itself never runs user code in its own process, so it loads no bunfig.toml (a
// preload there would run in the parent) and no .env; workers run as the bun CLI (BUN_BE_BUN=1) and
// get the app's bunfig, tsconfig, package.json and .env exactly as `bun app.ts` would (FACTS.md).
// Never `strip` the result: that removes the embedded program and leaves plain bun.
import { $ } from "bun";

const outfile = process.argv[2] ?? "dist/supervisor";
const started = performance.now();
await $`bun build --compile --minify --no-compile-autoload-bunfig --no-compile-autoload-dotenv src/cli.ts --outfile ${outfile}`.quiet();
const { size } = Bun.file(outfile);
console.log(
  `built ${outfile} (${(size / 1e6).toFixed(1)} MB) in ${Math.round(performance.now() - started)} ms`,
);
