// Zero-downtime operations under load: rolling reload, scaling, hung and recycled workers.
import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectControl } from "../src/control/client.ts";
import { readStat } from "../src/os/proc.ts";
import { parseBeat } from "../src/worker/protocol.ts";
import {
  distinctPids,
  fixture,
  freePort,
  get,
  isAlive,
  pidOf,
  runScenario,
  startSupervisor,
  waitFor,
} from "./helpers.ts";

const READY = /ready: \d+ workers? listening/;
const canMountPrivately =
  process.getuid?.() === 0 && Bun.spawnSync(["unshare", "--mount", "true"]).exitCode === 0;

/** What test/fixtures/drain-under-load.ts reports (run in a private network namespace when root). */
interface Scenario {
  ok: number;
  failed: number;
  errors: string[];
  pids: number[];
  before: number[];
  after: number[];
  output: string;
}

describe("rolling reload (HUP)", () => {
  test("three reloads under load: 0 failed requests, every worker pid replaced", async () => {
    const run = await runScenario<Scenario>(fixture("drain-under-load.ts"), ["reload"]);
    expect(run.errors).toEqual([]);
    expect(run.failed).toBe(0);
    expect(run.ok).toBeGreaterThan(100);
    expect(run.after).toHaveLength(2);
    for (const pid of run.after) expect(run.before.includes(pid)).toBe(false);
    expect(run.output).toMatch(/reload finished: 2 workers replaced in \d+ ms/);
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
  test("a beat file's line is read whole or not at all", () => {
    expect(parseBeat("12 40 5031\n")).toEqual({ beats: 12, requests: 40, at: 5031 });
    // An empty file (before the first beat, or caught between the rewrite's truncate and write), a
    // line without its newline (mid-write), and anything else are no beat.
    for (const line of ["", "12 40 50", "12 40\n", "12 40 5031 7\n", "x 40 5031\n"])
      expect(parseBeat(line)).toBeUndefined();
  });

  test("healthy workers under --timeout 1 beat into their files under /dev/shm and are never killed as hung", async () => {
    await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "2", "--timeout", "1"]);
    await sup.waitForOutput(READY);
    const workers = sup.workers();
    await get(sup.port);
    // Four beats per --timeout: 3 s of beats is 12 each, past three whole --timeout windows.
    const beats = () =>
      readdirSync("/dev/shm")
        .filter((name) => name.startsWith(`supervisor-${sup.pid}-`))
        .flatMap((dir) => readdirSync(join("/dev/shm", dir)).map((f) => join("/dev/shm", dir, f)))
        .map((file) => parseBeat(readFileSync(file, "utf8"))?.beats ?? 0);
    await waitFor(
      () => beats().length === 2 && beats().every((n) => n >= 12),
      "12 beats in each file",
      6_000,
    );
    expect(sup.workers()).toEqual(workers);
    expect(sup.output()).not.toMatch(/hung|killing/);
  });

  test("a handler that spins forever gets its worker replaced within --timeout + 1 s", async () => {
    await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "2", "--timeout", "1"]);
    await sup.waitForOutput(READY);
    const { killedAfterMs } = await spinOneWorker(sup, sup.port);
    expect(killedAfterMs).toBeLessThan(2_000);
    expect(sup.output()).toMatch(/sent no heartbeat for 1\.0 s \(hung\?\); killing it/);
  });

  test.if(canMountPrivately)(
    "with nowhere to write beat files (a read-only /dev/shm, no temp directory), beats come as messages: counted, and a spinning worker is still caught",
    async () => {
      const port = freePort();
      const dir = mkdtempSync(join(tmpdir(), "sv-nobeatfiles-"));
      const control = join(dir, "control.sock");
      // A private mount namespace whose /dev/shm is read-only; TMPDIR=/proc cannot hold a directory.
      const readOnlyShm = 'mount -t tmpfs -o ro tmpfs /dev/shm && exec "$@"';
      try {
        await using sup = startSupervisor(
          ["unshare", "--mount", "sh", "-c", readOnlyShm, "sh", process.execPath, "src/cli.ts", "run"].concat(
            [fixture("pid-app.ts"), "-w", "2", "--timeout", "1", "-p", String(port), "--control", control],
          ),
          { raw: true, port, env: { TMPDIR: "/proc" } },
        );
        await sup.waitForOutput(READY);
        // Each worker was started without a beat file (its config as it got it, in its environment).
        for (const pid of sup.workers())
          expect(readFileSync(`/proc/${pid}/environ`, "utf8")).not.toContain('"beatFile"');
        for (let i = 0; i < 10; i++) await get(port);
        // The requests reach the supervisor only in heartbeats, here messages.
        const client = await connectControl({ control }, process.env);
        await waitFor(
          async () => (await client.status()).workers.reduce((sum, w) => sum + w.requests, 0) >= 10,
          "the 10 requests counted from heartbeat messages",
          5_000,
        );
        const { hung, before } = await spinOneWorker(sup, port);
        // The other one beat all along and was never taken for hung.
        expect(sup.workers()).toContain(before.find((pid) => pid !== hung) as number);
        expect(sup.output().match(/killing it/g)).toHaveLength(1);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  test("--max-requests 100 recycles workers under load with 0 failed requests", async () => {
    const run = await runScenario<Scenario>(fixture("drain-under-load.ts"), ["max-requests"]);
    expect(run.errors).toEqual([]);
    expect(run.failed).toBe(0);
    expect(run.pids.filter((pid) => !run.before.includes(pid)).length).toBeGreaterThanOrEqual(2);
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

/** Send /spin (a handler that never returns) to one of two workers under --timeout 1: resolves once
 * the one burning CPU has been killed and replaced; `killedAfterMs` from its spinning to its death. */
async function spinOneWorker(sup: { workers(): number[] }, port: number) {
  const before = sup.workers();
  void get(port, "/spin", 5_000).catch(() => {});
  const hung = await waitFor(
    () => before.find((pid) => readCpuTicks(pid) > 20),
    "a worker burning CPU",
    3_000,
  );
  const t0 = performance.now();
  await waitFor(() => !isAlive(hung), "the hung worker to be killed", 2_500);
  const killedAfterMs = performance.now() - t0;
  await waitFor(() => sup.workers().length === 2 && !sup.workers().includes(hung), "its replacement");
  return { hung, before, killedAfterMs };
}

/** utime + stime of a process, in clock ticks. */
function readCpuTicks(pid: number): number {
  const stat = readStat(pid);
  return stat ? stat.utime + stat.stime : 0;
}
