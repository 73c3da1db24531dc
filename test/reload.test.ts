// Zero-downtime operations under load: rolling reload, scaling, hung and recycled workers.
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readStat } from "../src/proc.ts";
import {
  distinctPids,
  fixture,
  get,
  isAlive,
  loadUntil,
  pidOf,
  startSupervisor,
  waitFor,
} from "./helpers.ts";

const READY = /ready: \d+ workers? listening/;

/** Count lines matching `pattern` in the output so far. */
const count = (text: string, pattern: RegExp) => text.match(new RegExp(pattern, "g"))?.length ?? 0;

describe("rolling reload (HUP)", () => {
  test("three reloads under load: 0 failed requests, every worker pid replaced", async () => {
    await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "2"]);
    await sup.waitForOutput(READY);
    const before = new Set(sup.workers());
    const reloads = (async () => {
      await Bun.sleep(300); // let the load reach full speed first
      for (let i = 1; i <= 3; i++) {
        process.kill(sup.pid, "SIGHUP");
        await waitFor(() => count(sup.output(), /reload finished/) >= i, `reload ${i}`);
      }
      // Old workers are drained after their replacements are ready; wait until they are gone.
      await waitFor(() => sup.workers().length === 2, "the last old workers to exit");
      await Bun.sleep(300);
    })();
    const load = await loadUntil(sup.port, reloads);
    expect(load.errors).toEqual([]);
    expect(load.failed).toBe(0);
    expect(load.ok).toBeGreaterThan(100);
    const after = sup.workers();
    expect(after).toHaveLength(2);
    for (const pid of after) expect(before.has(pid)).toBe(false);
    expect(sup.output()).toMatch(/reload finished: 2 workers replaced in \d+ ms/);
  });

  test("a reload with a broken app file keeps the old workers serving; fixing it reloads fine", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sv-reload-"));
    const entry = join(dir, "app.ts");
    copyFileSync(fixture("pid-app.ts"), entry);
    await using sup = startSupervisor(["run", entry, "-w", "2"]);
    await sup.waitForOutput(READY);
    const before = sup.workers().sort();
    writeFileSync(entry, "export default { fetch( { oops };\n");
    process.kill(sup.pid, "SIGHUP");
    await sup.waitForOutput(/reload failed, keeping 2 running worker\(s\) on the old code: .*/);
    expect(sup.workers().sort()).toEqual(before);
    expect((await get(sup.port)).status).toBe(200);
    expect(isAlive(sup.pid)).toBe(true);
    copyFileSync(fixture("pid-app.ts"), entry);
    process.kill(sup.pid, "SIGHUP");
    await sup.waitForOutput(/reload finished/);
  });
});

describe("live scaling", () => {
  test("TTIN adds a worker, TTOU drains one: seen in ps and in the responses' pids", async () => {
    await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "2"]);
    await sup.waitForOutput(READY);
    process.kill(sup.pid, "SIGTTIN");
    await waitFor(() => sup.workers().length === 3, "3 workers in ps");
    const three = await distinctPids(sup.port, 3);
    expect([...three].sort()).toEqual(sup.workers().sort());
    // One at a time: the kernel merges a signal that arrives while the same one is still pending.
    process.kill(sup.pid, "SIGTTOU");
    await sup.waitForOutput(/scaling from 3 to 2 workers/);
    process.kill(sup.pid, "SIGTTOU");
    await waitFor(() => sup.workers().length === 1, "1 worker in ps");
    process.kill(sup.pid, "SIGTTOU");
    await sup.waitForOutput(/scale ignored: already at 1 worker \(never below 1\)/);
    const [last] = sup.workers();
    for (let i = 0; i < 5; i++) expect(pidOf((await get(sup.port)).body)).toBe(last as number);
  });
});

describe("hung and recycled workers", () => {
  test("a handler that spins forever gets its worker replaced within --timeout + 1 s", async () => {
    await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "2", "--timeout", "1"]);
    await sup.waitForOutput(READY);
    const before = sup.workers();
    void get(sup.port, "/spin", 5_000).catch(() => {});
    const hung = await waitFor(
      () => before.find((pid) => readCpuTicks(pid) > 20),
      "a worker burning CPU",
      3_000,
    );
    const t0 = performance.now();
    await waitFor(() => !isAlive(hung), "the hung worker to be killed", 2_500);
    expect(performance.now() - t0).toBeLessThan(2_000);
    await waitFor(() => sup.workers().length === 2 && !sup.workers().includes(hung), "its replacement");
    expect(sup.output()).toMatch(/sent no heartbeat for 1\.0 s \(hung\?\); killing it/);
  });

  test("--max-requests 100 recycles workers under load with 0 failed requests", async () => {
    await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "2", "--max-requests", "100"]);
    await sup.waitForOutput(READY);
    const before = new Set(sup.workers());
    const recycled = waitFor(
      () => count(sup.output(), /will be replaced \(max-requests/) >= 4,
      "4 recycles",
      20_000,
    );
    const load = await loadUntil(
      sup.port,
      recycled.then(() => Bun.sleep(500)),
      4,
    );
    expect(load.errors).toEqual([]);
    expect(load.failed).toBe(0);
    expect([...load.pids].filter((pid) => !before.has(pid)).length).toBeGreaterThanOrEqual(2);
  });

  test("--max-memory replaces a worker whose RSS stays above the limit", async () => {
    // Any Bun worker is above 1 MiB: it is replaced after 3 heartbeats over the limit, rolling.
    await using sup = startSupervisor([
      "run",
      fixture("pid-app.ts"),
      "--max-memory",
      "1M",
      "--timeout",
      "0.4",
    ]);
    await sup.waitForOutput(READY);
    await sup.waitForOutput(/worker 0 \(pid \d+\) will be replaced \(RSS \d+ MiB above --max-memory 1 MiB\)/);
    await sup.waitForOutput(/stopped \(max-memory\): exit code 0/);
    expect((await get(sup.port)).status).toBe(200);
  });
});

/** utime + stime of a process, in clock ticks. */
function readCpuTicks(pid: number): number {
  const stat = readStat(pid);
  return stat ? stat.utime + stat.stime : 0;
}
