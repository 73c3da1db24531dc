// node:http frameworks as their users write them (Express 4 and 5, Fastify, Koa, NestJS, plain node:http),
// with the real packages, under the compiled binary: the same contract as a Bun.serve app —
// balanced, counted, logged, drained under load with 0 failed requests, and the app's own SIGTERM
// shutdown work run to its end.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { FRAMEWORK_APPS } from "./fixtures/frameworks/apps.ts";
import {
  distinctPids,
  ensureBinary,
  fixture,
  get,
  isAlive,
  pidOf,
  runScenario,
  startSupervisor,
  waitFor,
} from "./helpers.ts";

const READY = /ready: 2 workers listening/;
const binary = { binary: true };

beforeAll(() => {
  ensureBinary();
}, 120_000);

const FRAMEWORKS = FRAMEWORK_APPS;

describe.each(FRAMEWORKS)("$name under dist/supervisor -w 2", ({ app, env }) => {
  test("balanced over 2 pids, every request in the access log and counted by --max-requests", async () => {
    await using sup = startSupervisor(
      ["run", fixture(app), "-w", "2", "--access-log", "--max-requests", "20"],
      { ...binary, env, cwd: dirname(fixture(app)) },
    );
    await sup.waitForOutput(READY);
    const first = await distinctPids(sup.port, 2);
    expect([...first].sort()).toEqual(sup.workers().sort());
    await waitFor(() => /\[worker \d\] GET \/ 200 [\d.]+ms pid \d+/.test(sup.stdout()), "an access-log line");
    // 20 requests per worker retire it: new pids take over, rolling.
    await waitFor(
      async () => {
        for (let i = 0; i < 10; i++) await get(sup.port);
        return sup.workers().some((pid) => !first.has(pid));
      },
      "a worker recycled by --max-requests",
      15_000,
    );
    expect(sup.output()).toMatch(/will be replaced \(max-requests, after \d+ requests\)/);
    expect(sup.stderr()).not.toMatch(/TypeError|Bun\.serve\(\) needs/);
  });

  test("TERM with a request in flight: 200, the app's 1.5 s SIGTERM shutdown work completes, exit 0", async () => {
    const marker = join(mkdtempSync(join(tmpdir(), "sv-fw-")), "shutdown.log");
    await using sup = startSupervisor(["run", fixture(app), "-w", "2", "--graceful-timeout", "8"], {
      ...binary,
      cwd: dirname(fixture(app)),
      env: { ...env, SHUTDOWN_MS: "1500", SHUTDOWN_MARKER: marker },
    });
    await sup.waitForOutput(READY);
    const workers = sup.workers();
    const slow = get(sup.port, "/slow?ms=800", 10_000);
    await sup.waitForOutput(/slow request started in \d+/);
    const t0 = performance.now();
    process.kill(sup.pid, "SIGTERM");
    const res = await slow;
    expect(res.status).toBe(200);
    expect(res.body).toMatch(/^slow \d+$/);
    expect(await sup.exited).toBe(0);
    const elapsed = performance.now() - t0;
    // Each worker finished its shutdown work (1.5 s after its requests were done), well inside the grace.
    const done = readFileSync(marker, "utf8").trim().split("\n");
    expect(done.map((line) => Number(line.split(" ")[1])).sort()).toEqual([...workers].sort());
    expect(elapsed).toBeGreaterThan(1_500);
    for (const pid of workers) expect(isAlive(pid)).toBe(false);
    expect(sup.output()).not.toMatch(/killing it|still running after/);
  });
});

describe.each(FRAMEWORKS)("$name: keep-alive clients after a reload", ({ app, env }) => {
  test("they reach the new workers as soon as the reload is done, not at --graceful-timeout", async () => {
    await using sup = startSupervisor(["run", fixture(app), "-w", "2", "--graceful-timeout", "20"], {
      ...binary,
      // No SIGTERM listener of the app's own closes its server: the supervisor's drain alone must.
      env: { ...env, NO_SIGTERM_LISTENER: "1" },
      cwd: dirname(fixture(app)),
    });
    await sup.waitForOutput(READY);
    const old = new Set(sup.workers());
    // Bun's fetch keeps its connections alive between requests, as a proxy in front would.
    let stop = false;
    const seen: { pid: number; at: number }[] = [];
    const clients = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const res = await fetch(`http://127.0.0.1:${sup.port}/`);
        seen.push({ pid: pidOf(await res.text()), at: performance.now() });
      }
    });
    await waitFor(() => seen.length > 20, "keep-alive traffic");
    process.kill(sup.pid, "SIGHUP");
    await sup.waitForOutput(/reload finished/, 20_000);
    const finished = performance.now();
    await waitFor(() => seen.some((r) => r.at > finished + 1_500), "traffic 1.5 s after the reload");
    stop = true;
    await Promise.all(clients);
    // The old workers told their clients to close while draining: none answers 1 s after the reload.
    const late = seen.filter((r) => r.at > finished + 1_000 && old.has(r.pid));
    expect(late).toEqual([]);
  });
});

describe.each(FRAMEWORKS)("$name: three reloads under load", ({ app, env }) => {
  test.each([
    ["with the app's own SIGTERM listener", {}],
    ["with no SIGTERM listener of the app's", { NO_SIGTERM_LISTENER: "1" }],
  ])("%s: 0 failed requests, every worker pid replaced", async (_, extraEnv) => {
    const run = await runScenario<{
      ok: number;
      failed: number;
      errors: string[];
      before: number[];
      after: number[];
      output: string;
    }>(fixture("drain-under-load.ts"), ["reload", fixture(app), "--binary"], { ...env, ...extraEnv });
    expect(run.errors).toEqual([]);
    expect(run.failed).toBe(0);
    expect(run.ok).toBeGreaterThan(100);
    expect(run.after).toHaveLength(2);
    for (const pid of run.after) expect(run.before.includes(pid)).toBe(false);
    expect(run.output).toMatch(/reload finished: 2 workers replaced in [\d.]+ m?s/);
    expect(run.output).not.toMatch(/killing it|TypeError/);
  });
});

describe.each(FRAMEWORKS)("$name: --max-requests under load", ({ app, env }) => {
  test("workers recycled every 100 requests or so, 0 failed requests", async () => {
    const run = await runScenario<{
      ok: number;
      failed: number;
      errors: string[];
      before: number[];
      pids: number[];
    }>(fixture("drain-under-load.ts"), ["max-requests", fixture(app), "--binary"], env);
    expect(run.errors).toEqual([]);
    expect(run.failed).toBe(0);
    expect(run.pids.filter((pid) => !run.before.includes(pid)).length).toBeGreaterThanOrEqual(2);
  });
});
