// The app's request metrics with --admin, under the compiled binary: exact counts by method and code,
// a histogram whose count is the number of requests, summed over workers, and never backwards when a
// worker is SIGKILLed, recycled or replaced by a reload. Parsed with the strict exposition parser.
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { ensureBinary, fixture, freePort, isAlive, startSupervisor, waitFor } from "./helpers.ts";
import { parseExposition } from "./prometheus.ts";

const READY = /ready: 2 workers listening/;
const binary = { binary: true };

beforeAll(() => {
  ensureBinary();
}, 120_000);

const APPS = [
  { name: "Bun.serve app", app: fixture("lifespan/bun-app.ts") },
  { name: "Express app", app: fixture("frameworks/express.js") },
];

async function scrape(admin: number) {
  const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
  const families = parseExposition(text);
  const requests = (method: string, code: string) =>
    families
      .get("http_requests_total")
      ?.samples.find((s) => s.labels.method === method && s.labels.code === code)?.value ?? 0;
  const histogram = families.get("http_request_duration_seconds")?.samples ?? [];
  const count = histogram.find((s) => s.labels.__sample === "_count")?.value ?? -1;
  const inFlight = families.get("http_requests_in_flight")?.samples[0]?.value ?? -1;
  return { text, requests, count, inFlight };
}

/** `n` requests, each on a new connection so both workers get some. */
async function send(port: number, path: string, n: number, method = "GET") {
  for (let i = 0; i < n; i++) {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers: { connection: "close" } });
    await res.arrayBuffer();
  }
}

function start(app: string, extra: string[] = []) {
  const admin = freePort();
  const sup = startSupervisor(["run", app, "-w", "2", "--admin", String(admin), ...extra], {
    ...binary,
    cwd: dirname(app),
  });
  return { sup, admin };
}

describe.each(APPS)("$name with --admin", ({ app }) => {
  test("exact counts by method and code; the histogram counts every request; none in flight after", async () => {
    const { sup, admin } = start(app);
    await using _ = sup;
    await sup.waitForOutput(READY);
    await send(sup.port, "/", 30);
    await send(sup.port, "/missing", 5);
    await send(sup.port, "/", 3, "HEAD");
    const m = await scrape(admin);
    expect(m.requests("GET", "200")).toBe(30);
    expect(m.requests("GET", "404")).toBe(5);
    expect(m.requests("HEAD", "200")).toBe(3);
    expect(m.count).toBe(38);
    expect(m.inFlight).toBe(0);
  });

  test("a request in flight shows in the gauge", async () => {
    const { sup, admin } = start(app);
    await using _ = sup;
    await sup.waitForOutput(READY);
    const slow = fetch(`http://127.0.0.1:${sup.port}/slow?ms=1500`);
    await sup.waitForOutput(/slow request started in \d+/);
    expect((await scrape(admin)).inFlight).toBe(1);
    await (await slow).text();
    // node:http reports a response done ("close") just after its last byte left.
    await waitFor(async () => (await scrape(admin)).inFlight === 0, "no request in flight");
  });

  test("counts survive SIGKILL of every worker, a --max-requests recycle and a reload", async () => {
    const { sup, admin } = start(app, ["--max-requests", "15"]);
    await using _ = sup;
    await sup.waitForOutput(READY);
    await send(sup.port, "/", 20);
    // Served, then killed at once: nothing was sent anywhere, and nothing is lost.
    const killed = sup.workers();
    for (const pid of killed) process.kill(pid, "SIGKILL");
    await waitFor(() => killed.every((pid) => !isAlive(pid)), "both workers to die");
    expect((await scrape(admin)).requests("GET", "200")).toBe(20);
    // Ready, and not the killed ones (the supervisor may not have seen their exits yet).
    await waitFor(async () => {
      const { text } = await scrape(admin);
      return (
        /^supervisor_workers_ready 2$/m.test(text) && killed.every((pid) => !text.includes(`pid="${pid}"`))
      );
    }, "2 new workers ready");
    // 40 more requests recycle workers (every 15 or so), rolling; every one is still counted.
    await send(sup.port, "/", 40);
    await sup.waitForOutput(/will be replaced \(max-requests/);
    expect((await scrape(admin)).requests("GET", "200")).toBe(60);
    process.kill(sup.pid, "SIGHUP");
    await sup.waitForOutput(/reload finished/, 20_000);
    await send(sup.port, "/", 5);
    const m = await scrape(admin);
    expect(m.requests("GET", "200")).toBe(65);
    expect(m.count).toBe(65);
  });
});

test("the metrics files live under /dev/shm while the supervisor runs and are removed when it stops", async () => {
  const { sup, admin } = start(fixture("lifespan/bun-app.ts"));
  await sup.waitForOutput(READY);
  const dir = `/dev/shm/supervisor-${sup.pid}-`;
  const { readdirSync } = await import("node:fs");
  const mine = () => readdirSync("/dev/shm").filter((name) => `/dev/shm/${name}`.startsWith(dir));
  expect(mine()).toHaveLength(1);
  expect((await scrape(admin)).text).toContain("http_requests_total");
  process.kill(sup.pid, "SIGTERM");
  expect(await sup.exited).toBe(0);
  expect(mine()).toEqual([]);
  expect(existsSync(dir)).toBe(false);
});

test("a SIGKILLed supervisor's metrics directory is removed by the next one that starts", async () => {
  const first = start(fixture("lifespan/bun-app.ts"));
  await first.sup.waitForOutput(READY);
  const { readdirSync } = await import("node:fs");
  const of = (pid: number) => readdirSync("/dev/shm").filter((name) => name.startsWith(`supervisor-${pid}-`));
  expect(of(first.sup.pid)).toHaveLength(1);
  const workers = first.sup.workers();
  process.kill(first.sup.pid, "SIGKILL");
  await first.sup.exited;
  await waitFor(() => workers.every((pid) => !isAlive(pid)), "its workers to follow it");
  expect(of(first.sup.pid)).toHaveLength(1); // left behind
  await using _ = first.sup;
  const second = start(fixture("lifespan/bun-app.ts"));
  await using __ = second.sup;
  await second.sup.waitForOutput(READY);
  expect(of(first.sup.pid)).toEqual([]);
});
