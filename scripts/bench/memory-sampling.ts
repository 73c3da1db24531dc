// --max-memory's cost and effect, measured on the supervisor from source:
//  - idle CPU of the supervisor process (not its workers) with and without --max-memory, for -w 4 and
//    -w 16, configurations alternating so machine drift hits both alike;
//  - the overshoot: peak RSS of a worker leaking 50 MB/s (test/fixtures/leak-app.ts) under
//    --max-memory 150M, read from /proc every 5 ms until the worker is gone.
// Usage: bun scripts/bench/memory-sampling.ts [seconds=20] [rounds=2] [leaks=3]
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { childPids, cpuTicks, ROOT, waitFor } from "../lib/proc.ts";

const seconds = Number(process.argv[2] ?? 20);
const rounds = Number(process.argv[3] ?? 2);
const leaks = Number(process.argv[4] ?? 3);
let port = 19_300 + Math.floor(Math.random() * 200);

function start(app: string, args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn(
    [process.execPath, join(ROOT, "src/cli.ts"), "run", app, "-p", String(port++), ...args],
    {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    },
  );
  let output = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) output += new TextDecoder().decode(chunk);
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  return { proc, output: () => output };
}

/** CPU ms per second of the idle supervisor process. */
async function idleCpu(workers: number, flags: string[]): Promise<number> {
  const sup = start(join(ROOT, "scripts/bench/hello.ts"), ["-w", String(workers), ...flags]);
  await waitFor(() => sup.output().includes("ready:"), "ready", 30_000);
  await Bun.sleep(2_000); // start-up work done
  const before = cpuTicks(sup.proc.pid);
  await Bun.sleep(seconds * 1_000);
  const ticks = cpuTicks(sup.proc.pid) - before;
  sup.proc.kill("SIGTERM");
  await sup.proc.exited;
  return (ticks * 10) / seconds;
}

const page = 4096;
async function overshoot(): Promise<number> {
  const sup = start(join(ROOT, "test/fixtures/leak-app.ts"), ["-w", "1", "--max-memory", "150M"]);
  await waitFor(() => sup.output().includes("ready:"), "ready", 30_000);
  const [worker] = childPids(sup.proc.pid);
  let peak = 0;
  for (;;) {
    try {
      peak = Math.max(peak, Number(readFileSync(`/proc/${worker}/statm`, "latin1").split(" ")[1]) * page);
    } catch {
      break; // replaced and gone
    }
    await Bun.sleep(5);
  }
  sup.proc.kill("SIGTERM");
  await sup.proc.exited;
  return peak / 2 ** 20 / 150;
}

const cpu: Record<string, number[]> = {};
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? [false, true] : [true, false];
  for (const workers of [4, 16])
    for (const on of order) {
      const name = `-w ${workers}${on ? " --max-memory 1G" : ""}`;
      cpu[name] = [...(cpu[name] ?? []), await idleCpu(workers, on ? ["--max-memory", "1G"] : [])];
    }
}
const ratios: number[] = [];
for (let i = 0; i < leaks; i++) ratios.push(await overshoot());
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
for (const [name, values] of Object.entries(cpu))
  console.log(
    `idle supervisor CPU ${name}: ${mean(values).toFixed(2)} ms/s (${values.map((v) => v.toFixed(2)).join(", ")})`,
  );
console.log(
  `peak RSS of a worker leaking 50 MB/s, --max-memory 150M: ${ratios.map((x) => `${x.toFixed(2)}x`).join(", ")} of the limit`,
);
