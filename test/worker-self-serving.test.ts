// Apps that start their own server (issue 7): Bun.serve({ port: 1234 }) or Elysia's app.listen(3000)
// run on the supervisor's port, once, and are drained, counted and reported ready like exported apps.
import { describe, expect, test } from "bun:test";
import { distinctPids, fixture, get, startSupervisor, waitFor } from "./helpers.ts";
import { startWorkers } from "./worker-harness.ts";

const elysia = fixture("self-serving/elysia-listen.ts");
const bunServe = fixture("self-serving/bun-serve.ts");
const READY = /ready: \d+ workers? listening/;

describe("through the supervisor (-w 2)", () => {
  test.each([
    ["Elysia app.listen(3000)", elysia, /^elysia pid \d+ port (\d+)\n$/],
    ["Bun.serve({ port: 1234, fetch })", bunServe, /^bun-serve pid \d+ port (\d+) this-is-server true\n$/],
  ])("%s answers on the supervisor's port from 2 pids", async (_, app, shape) => {
    await using sup = startSupervisor(["run", app, "-w", "2"]);
    await sup.waitForOutput(READY);
    const pids = await distinctPids(sup.port, 2);
    expect([...pids].sort()).toEqual(sup.workers().sort());
    const { body } = await get(sup.port);
    // The server object the app holds reports the supervisor's port, not the one it asked for.
    expect(shape.exec(body)?.[1]).toBe(String(sup.port));
  });
});

describe("in the worker", () => {
  test("Elysia: its static routes are served too", async () => {
    await using w = startWorkers(elysia);
    await w.ready();
    expect(await get(w.port, "/static")).toEqual({ status: 200, body: "static\n" });
  });

  test("a module that starts a server and exports a handler is served once, by the server it started", async () => {
    await using w = startWorkers(fixture("self-serving/serve-and-export.ts"), { workers: 2 });
    await w.ready();
    const bodies = new Set<string>();
    for (let i = 0; i < 30; i++) bodies.add((await get(w.port)).body.replace(/\d+/, "N"));
    expect([...bodies]).toEqual(["started pid N\n"]);
  });

  test("a second server on another port is left alone", async () => {
    await using w = startWorkers(fixture("self-serving/two-servers.ts"));
    await w.ready();
    const second = Number(
      (await waitFor(() => /second server on port (\d+)/.exec(w.stdout()), "the second server"))[1],
    );
    expect(second).not.toBe(w.port);
    expect((await get(w.port)).body).toMatch(/^main pid/);
    expect((await get(second)).body).toMatch(/^second pid/);
  });

  test("a server started after the import is done is still taken, and readiness waits for it", async () => {
    await using w = startWorkers(fixture("self-serving/late-serve.ts"));
    await w.ready();
    expect((await get(w.port)).body).toMatch(/^late pid \d+/);
  });

  test("no default export and no server: a boot error that says both ways, exit 3", async () => {
    // It is waited for until shortly before --boot-timeout (its start-up work may be slow).
    await using w = startWorkers(fixture("self-serving/no-server.ts"), { config: { bootTimeoutMs: 2_500 } });
    const [worker] = w.workers;
    expect(await worker?.exited).toBe(3);
    const error = worker?.messages.find((m) => m.type === "boot-error");
    expect(error && "message" in error ? error.message : "").toMatch(
      /does not export a server: it has no default export and started no server within 2 s\. .*start a server while it loads \(Bun\.serve\(\), app\.listen\(\)\)/,
    );
  });

  test("Elysia: requests are counted after Elysia reloads its handlers (max-requests retires at 3)", async () => {
    await using w = startWorkers(elysia, { config: { maxRequests: 3, heartbeatMs: 50 } });
    await w.ready();
    const [worker] = w.workers;
    for (let i = 0; i < 3; i++) expect((await get(w.port)).status).toBe(200);
    await waitFor(() => worker?.messages.some((m) => m.type === "retire"), "a retire message");
    await waitFor(
      () => worker?.messages.some((m) => m.type === "heartbeat" && m.requests === 3),
      "a heartbeat counting 3 requests",
    );
  });

  test("Elysia: TERM drains — new responses say Connection: close, a request in flight completes, exit 0", async () => {
    await using w = startWorkers(elysia);
    await w.ready();
    const [worker] = w.workers;
    const slow = fetch(`http://127.0.0.1:${w.port}/slow?ms=1000`);
    await waitFor(() => w.stdout().includes("slow request started"), "the slow request to start");
    worker?.proc.kill("SIGTERM");
    // The drain swaps in closing handlers (through Elysia's own routes too) before the listener closes.
    await waitFor(async () => {
      const res = await fetch(`http://127.0.0.1:${w.port}/static`);
      expect(res.status).toBe(200);
      await res.text();
      return res.headers.get("connection") === "close";
    }, "a response with Connection: close");
    const res = await slow;
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^slow pid/);
    expect(await worker?.exited).toBe(0);
  });
});
