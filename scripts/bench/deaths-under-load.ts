// Deaths under load are not a crash loop: 1 request in 50 exits its worker (test/fixtures/
// crash-under-load-app.ts), `-w 2 --max-restarts 3`, steady load from sequential clients that pause
// between requests; prints the share of requests that succeeded and whether the supervisor stayed up.
// Usage: bun scripts/bench/deaths-under-load.ts [seconds=10] [clients=4] [pauseMs=10]
import { join } from "node:path";
import { ROOT, waitFor } from "../lib/proc.ts";

const [seconds = 10, clients = 4, pauseMs = 10] = process.argv.slice(2).map(Number);
const port = 19_600 + Math.floor(Math.random() * 200);
const app = join(ROOT, "test/fixtures/crash-under-load-app.ts");
const args = ["run", app, "-w", "2", "--max-restarts", "3", "-p", String(port)];
const proc = Bun.spawn([process.execPath, join(ROOT, "src/cli.ts"), ...args], {
  stdio: ["ignore", "pipe", "pipe"],
});
let output = "";
const pump = async (s: ReadableStream<Uint8Array>) => {
  for await (const chunk of s) output += new TextDecoder().decode(chunk);
};
void pump(proc.stdout);
void pump(proc.stderr);
await waitFor(() => output.includes("ready:"), "ready", 30_000);

let ok = 0;
let failed = 0;
const end = performance.now() + seconds * 1_000;
const client = async () => {
  while (performance.now() < end) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5_000) });
      await res.text();
      if (res.status === 200) ok++;
      else failed++;
    } catch {
      failed++;
    }
    await Bun.sleep(pauseMs);
  }
};
await Promise.all(Array.from({ length: clients }, client));
const up = proc.exitCode === null;
const deaths = output.match(/died:/g)?.length ?? 0;
console.log(
  `${ok + failed} requests, ${((100 * ok) / (ok + failed)).toFixed(1)}% succeeded, ${deaths} worker deaths, ` +
    `supervisor ${up ? "still up" : `exited ${proc.exitCode}`}${/giving up/.test(output) ? " (gave up: crash loop)" : ""}`,
);
proc.kill("SIGTERM");
await proc.exited;
