// Throughput cost of --access-log and of --admin's request metrics: one worker of pid-app.ts under
// `wrk -t1 -c32 -d5s`, its stdout to a file (as under a process manager or a container runtime),
// alternating runs of
//   before: the worker as committed at HEAD~ (or BASE=<rev>), log off; off: this worker, log off;
//   text: log on, text lines; json: log on, JSON lines; metrics: request metrics on (--admin), log off.
// A benchmark script, not a test:
//   BASE=HEAD~1 bun scripts/bench/access-log-worker.ts [rounds]
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRequestMetrics } from "../../src/control/request-metrics.ts";
import { makeSharedDir } from "../../src/os/shared-dir.ts";
import { fixture, get, ROOT } from "../../test/helpers.ts";
import { startWorkers } from "../../test/worker-harness.ts";

const rounds = Number(process.argv[2] ?? 5);
const base = process.env.BASE;
const baseSource = base
  ? Bun.spawnSync(["git", "show", `${base}:src/worker/main.ts`], { cwd: ROOT }).stdout.toString()
  : undefined;
const sharedDir = makeSharedDir();
if (!sharedDir) throw new Error("no writable /dev/shm or temp directory");
const requestMetrics = createRequestMetrics(sharedDir);
const modes = {
  ...(baseSource ? { before: { workerSource: baseSource, config: {} } } : {}),
  off: { config: { accessLog: false } },
  text: { config: { accessLog: true, logFormat: "pretty" as const } },
  json: { config: { accessLog: true, logFormat: "json" as const } },
  metrics: { config: { accessLog: false, metricsFile: requestMetrics.open(1) } },
};
const results: Record<string, number[]> = Object.fromEntries(Object.keys(modes).map((m) => [m, []]));
const logFile = join(tmpdir(), `access-log-bench-${process.pid}.log`);

for (let round = 0; round < rounds; round++) {
  for (const [mode, options] of Object.entries(modes)) {
    await using w = startWorkers(fixture("pid-app.ts"), { ...options, stdout: Bun.file(logFile) });
    await w.ready();
    await get(w.port);
    const wrk = Bun.spawnSync(["wrk", "-t1", "-c32", "-d5s", `http://127.0.0.1:${w.port}/hello`]);
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(wrk.stdout.toString())?.[1]);
    (results[mode] as number[]).push(rps);
    console.log(`round ${round + 1} ${mode}: ${rps.toFixed(0)} req/s`);
    rmSync(logFile, { force: true });
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const off = median(results.off as number[]);
for (const [mode, xs] of Object.entries(results)) {
  console.log(
    `${mode}: median ${median(xs).toFixed(0)} req/s, ratio to off ${(median(xs) / off).toFixed(3)}`,
  );
}
requestMetrics.dispose();
rmSync(sharedDir, { recursive: true, force: true });
