// Chaos (issue 3): under load, SIGKILL a random worker every 0.5–2 s for 30 s. Checks that every
// second of the run has successful responses and that the worker count is back to N after each kill.
// Then 1,000 more restarts of a 16-worker supervisor, as fast as it allows without crash-loop backoff
// (only workers older than 1 s are killed), comparing the parent's open fds and RSS before and after.
// Usage: bun scripts/chaos.ts [seconds=30] [restarts=1000] [workers=4]
import { readStat } from "../src/os/proc.ts";
import { childPids, openFds, rssKiB, startSupervisor, waitFor } from "./lib/proc.ts";

const [seconds = 30, restarts = 1000, workers = 4] = process.argv.slice(2).map(Number);
const port = 18_900 + Math.floor(Math.random() * 90);
const sup = await startSupervisor(["examples/hello/app.ts", "-w", String(workers), "-p", String(port)]);
const parent = sup.proc.pid;

// --- phase 1: random kills under load ---
const perSecond = new Map<number, number>();
let ok = 0;
let failed = 0;
let loading = true;
const client = async () => {
  while (loading) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2_000) });
      await res.text();
      if (res.status !== 200) throw new Error(String(res.status));
      ok++;
      const s = Math.floor(Date.now() / 1000);
      perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
    } catch {
      failed++; // a request in flight on a SIGKILLed worker cannot be saved
    }
  }
};
const clients = Array.from({ length: 8 }, client);
const startSecond = Math.floor(Date.now() / 1000);
const recovery: number[] = [];
const until = performance.now() + seconds * 1000;
let kills = 0;
while (performance.now() < until) {
  await Bun.sleep(500 + Math.random() * 1500);
  const live = childPids(parent);
  const victim = live[Math.floor(Math.random() * live.length)];
  if (victim === undefined) continue;
  const t0 = performance.now();
  process.kill(victim, "SIGKILL");
  kills++;
  await waitFor(() => {
    const now = childPids(parent);
    return now.length === workers && !now.includes(victim);
  }, "the worker count to be back to N");
  recovery.push(performance.now() - t0);
}
loading = false;
await Promise.all(clients);
const endSecond = Math.floor(Date.now() / 1000) - 1;
const emptySeconds: number[] = [];
for (let s = startSecond + 1; s <= endSecond; s++) if (!perSecond.get(s)) emptySeconds.push(s - startSecond);
recovery.sort((a, b) => a - b);
const median = recovery[Math.floor(recovery.length / 2)] ?? 0;
console.log(
  `phase 1: ${kills} SIGKILLs over ${seconds} s under load (8 keep-alive clients, ${workers} workers)`,
);
console.log(`  responses ok ${ok}, failed ${failed} (requests in flight on a killed worker)`);
console.log(
  `  seconds without a successful response: ${emptySeconds.length === 0 ? "none" : emptySeconds.join(", ")}`,
);
console.log(
  `  back to ${workers} workers after every kill: median ${median.toFixed(0)} ms, max ${(recovery.at(-1) ?? 0).toFixed(0)} ms`,
);

const code = await sup.stop();
console.log(`  supervisor exit code after TERM: ${code}`);

// --- phase 2: many restarts; does the parent leak? ---
const many = 16;
const sup2 = await startSupervisor(["examples/hello/app.ts", "-w", String(many), "-p", String(port + 1)]);
const parent2 = sup2.proc.pid;
await Bun.sleep(1_000);
const fdsBefore = openFds(parent2);
const rssBefore = rssKiB(parent2);
const ticksPerSecond = 100;
const bootTime = Number(/btime (\d+)/.exec(await Bun.file("/proc/stat").text())?.[1]);
const ageMs = (pid: number) => {
  const stat = readStat(pid);
  return stat ? Date.now() - (bootTime * 1000 + (stat.starttime / ticksPerSecond) * 1000) : 0;
};
const t0 = performance.now();
let done = 0;
const samples: string[] = [];
while (done < restarts) {
  // Only workers older than the 1 s minimum uptime, so no crash-loop backoff slows the run down.
  for (const pid of childPids(parent2).filter((p) => ageMs(p) > 1_100)) {
    if (done >= restarts) break;
    process.kill(pid, "SIGKILL");
    done++;
    // RSS along the way: a leak grows with every restart, a warming heap levels off.
    if (done % 250 === 0) samples.push(`${done}: ${rssKiB(parent2)} KiB, ${openFds(parent2)} fds`);
  }
  await Bun.sleep(20);
}
await waitFor(() => childPids(parent2).length === many, "all workers back");
await Bun.sleep(1_000);
const fdsAfter = openFds(parent2);
const rssAfter = rssKiB(parent2);
console.log(
  `phase 2: ${done} restarts of a ${many}-worker supervisor in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
);
console.log(`  parent open fds: ${fdsBefore} before, ${fdsAfter} after`);
console.log(`  parent RSS: ${rssBefore} KiB before, ${rssAfter} KiB after`);
console.log(`  along the way: ${samples.join("; ")}`);
console.log(`  supervisor exit code after TERM: ${await sup2.stop()}`);
