// The compiled binary, as a user downloads and runs it: dist/supervisor (built if missing or stale).
import { beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  distinctPids,
  ensureBinary,
  fixture,
  get,
  isAlive,
  pidOf,
  startSupervisor,
  waitFor,
} from "./helpers.ts";

const READY = /ready: \d+ workers? listening/;
const binary = { binary: true };

beforeAll(() => {
  ensureBinary();
}, 120_000);

describe("dist/supervisor", () => {
  test("a Hono app with -w 2: two worker pids, WebSocket echo through hono/bun", async () => {
    await using sup = startSupervisor(["run", fixture("hono/app.ts"), "-w", "2"], binary);
    await sup.waitForOutput(READY);
    const pids = await distinctPids(sup.port, 2);
    expect([...pids].sort()).toEqual(sup.workers().sort());
    const ws = new WebSocket(`ws://127.0.0.1:${sup.port}/ws`);
    const reply = new Promise<string>((resolve) => (ws.onmessage = (e) => resolve(String(e.data))));
    await new Promise((resolve) => (ws.onopen = resolve));
    ws.send("hi");
    expect(await reply).toBe("hono echo hi");
    ws.close();
  });

  test("SIGKILL a worker: the other serves meanwhile, a new one takes the slot", async () => {
    await using sup = startSupervisor(["run", fixture("hono/app.ts"), "-w", "2"], binary);
    await sup.waitForOutput(READY);
    const [victim, survivor] = [...(await distinctPids(sup.port, 2))] as [number, number];
    process.kill(victim, "SIGKILL");
    await waitFor(() => !isAlive(victim), "the victim to die");
    const seen = new Set<number>();
    await waitFor(async () => {
      const { status, body } = await get(sup.port);
      expect(status).toBe(200);
      seen.add(pidOf(body));
      return seen.size >= 2;
    }, "a response from the replacement");
    expect(seen.has(survivor)).toBe(true);
    expect(seen.has(victim)).toBe(false);
  });

  test("TERM with a request in flight: 200, exit 0, no process left", async () => {
    await using sup = startSupervisor(["run", fixture("hono/app.ts"), "-w", "2"], binary);
    await sup.waitForOutput(READY);
    const workers = sup.workers();
    const slow = get(sup.port, "/slow?ms=1200", 10_000);
    await sup.waitForOutput(/slow request started/); // in flight in a worker before TERM
    process.kill(sup.pid, "SIGTERM");
    expect((await slow).status).toBe(200);
    expect(await sup.exited).toBe(0);
    for (const pid of workers) expect(isAlive(pid)).toBe(false);
  });

  test("SIGKILL the supervisor: no worker survives 1 s, the port is free", async () => {
    await using sup = startSupervisor(["run", fixture("hono/app.ts"), "-w", "2"], binary);
    await sup.waitForOutput(READY);
    const workers = sup.workers();
    process.kill(sup.pid, "SIGKILL");
    await waitFor(() => workers.every((pid) => !isAlive(pid)), "every worker to exit", 1_000);
    const probe = Bun.listen({ hostname: "0.0.0.0", port: sup.port, socket: { data() {} } });
    probe.stop(true);
  });

  test("SIGKILL the supervisor while the workers still run the app's start-up work: they exit within 1 s", async () => {
    // While the app's start-up work runs, the channel's end-of-file is what tells a worker.
    await using sup = startSupervisor(["run", fixture("lifespan/bun-app.ts"), "-w", "2"], {
      ...binary,
      env: { STARTUP_MS: "20000" },
    });
    await waitFor(() => sup.workers().length === 2, "2 workers starting");
    const workers = sup.workers();
    process.kill(sup.pid, "SIGKILL");
    await waitFor(() => workers.every((pid) => !isAlive(pid)), "every worker to exit", 1_000);
  });

  test("an app in its own directory: its .env is loaded and process.execPath runs bun, not the supervisor", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sv-app-"));
    cpSync(fixture("spawns-bun-app.ts"), join(dir, "app.ts"));
    writeFileSync(join(dir, ".env"), "GREETING=hello-from-dotenv\n");
    await using sup = startSupervisor(["run", "app.ts"], { ...binary, cwd: dir });
    await sup.waitForOutput(READY);
    expect((await get(sup.port)).body).toBe("child says 42; greeting hello-from-dotenv\n");
  });

  test("bad input through the binary: one line and the exit code", async () => {
    await using a = startSupervisor(["run", fixture("pid-app.ts"), "-w", "0"], binary);
    expect(await a.exited).toBe(2);
    expect(a.stderr().trim()).toBe(
      "supervisor: -w/--workers must be a whole number from 1 to 1024 or auto, got '0'",
    );
    await using b = startSupervisor(["run", fixture("throw-app.ts"), "-w", "2"], binary);
    expect(await b.exited).toBe(3);
    expect(b.stderr().match(/error: database URL is not set/g)).toHaveLength(1);
  });
});
