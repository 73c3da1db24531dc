// --access-log (issue 5): one line per request on the worker's stdout, as text or JSON lines.
import { describe, expect, test } from "bun:test";
import { fixture, get, waitFor } from "./helpers.ts";
import { startWorkers } from "./worker-harness.ts";

const TEXT = /^(\S+) \[worker (\d+)\] ([A-Z]+) (\S+) (\d{3}) (\d+(?:\.\d+)?)ms pid (\d+)$/;
const lines = (text: string) => text.split("\n").filter(Boolean);

describe("access log", () => {
  test("text: method, path without query, status, duration, worker slot and pid; errors are 500", async () => {
    await using w = startWorkers(fixture("self-serving/bun-serve.ts"), { config: { accessLog: true } });
    await w.ready();
    const pid = w.workers[0]?.pid;
    await get(w.port, "/hello?token=secret");
    await get(w.port, "/missing");
    expect((await get(w.port, "/throw")).status).toBe(500);
    const res = await fetch(`http://127.0.0.1:${w.port}/form`, { method: "POST", body: "x" });
    await res.text();
    const logged = await waitFor(() => {
      const all = lines(w.stdout());
      return all.length >= 4 ? all : undefined;
    }, "4 access-log lines");
    expect(logged).toHaveLength(4);
    const parsed = logged.map((line) => {
      const m = TEXT.exec(line);
      expect(m).not.toBeNull();
      const [, time, worker, method, path, status, ms, linePid] = m as RegExpExecArray;
      expect(Number.isNaN(Date.parse(time as string))).toBe(false);
      expect(Number(ms)).toBeGreaterThanOrEqual(0);
      return { worker: Number(worker), method, path, status: Number(status), pid: Number(linePid) };
    });
    expect(parsed).toEqual([
      { worker: 0, method: "GET", path: "/hello", status: 200, pid: pid as number },
      { worker: 0, method: "GET", path: "/missing", status: 404, pid: pid as number },
      { worker: 0, method: "GET", path: "/throw", status: 500, pid: pid as number },
      { worker: 0, method: "POST", path: "/form", status: 200, pid: pid as number },
    ]);
    expect(w.stdout()).not.toContain("secret");
  });

  test("JSON lines parse one by one and carry each worker's slot and pid", async () => {
    await using w = startWorkers(fixture("pid-app.ts"), {
      workers: 2,
      config: { accessLog: true, logFormat: "json" },
    });
    await w.ready();
    const slots = new Set<string>();
    await waitFor(async () => {
      slots.add(/slot (\d)/.exec((await get(w.port, "/a/b"))?.body)?.[1] ?? "");
      return slots.size === 2;
    }, "both workers to answer");
    for (const worker of w.workers) {
      const records = await waitFor(() => {
        const all = lines(worker.stdout());
        return all.length > 0 ? all : undefined;
      }, `worker ${worker.slot}'s lines`);
      for (const line of records) {
        const record = JSON.parse(line);
        expect(record).toEqual({
          time: expect.any(String),
          level: "info",
          msg: "request",
          method: "GET",
          path: "/a/b",
          status: 200,
          durationMs: expect.any(Number),
          worker: worker.slot,
          pid: worker.pid,
        });
        expect(Number.isNaN(Date.parse(record.time))).toBe(false);
      }
    }
  });

  test("Bun routes, static Responses included, and Elysia's routes are logged", async () => {
    await using r = startWorkers(fixture("routes-app.ts"), { config: { accessLog: true } });
    await using e = startWorkers(fixture("self-serving/elysia-listen.ts"), { config: { accessLog: true } });
    await Promise.all([r.ready(), e.ready()]);
    expect((await get(r.port, "/static")).body).toBe("static\n");
    expect((await get(r.port, "/static")).body).toBe("static\n"); // a static Response served twice
    await get(r.port, "/api/7");
    await get(e.port, "/");
    await get(e.port, "/static");
    const paths = (text: string) => lines(text).map((line) => TEXT.exec(line)?.slice(3, 6).join(" "));
    await waitFor(() => paths(r.stdout()).length === 3 && paths(e.stdout()).length === 2, "5 lines");
    expect(paths(r.stdout())).toEqual(["GET /static 200", "GET /static 200", "GET /api/7 200"]);
    expect(paths(e.stdout())).toEqual(["GET / 200", "GET /static 200"]);
  });

  test("every request of a burst is logged, and the worker still drains with exit 0", async () => {
    await using w = startWorkers(fixture("pid-app.ts"), { config: { accessLog: true } });
    await w.ready();
    const [worker] = w.workers;
    await Promise.all(Array.from({ length: 50 }, () => get(w.port, "/burst")));
    worker?.proc.kill("SIGTERM");
    expect(await worker?.exited).toBe(0);
    expect(lines(w.stdout()).filter((line) => line.includes("GET /burst 200"))).toHaveLength(50);
  });

  test("off by default: nothing on stdout", async () => {
    await using w = startWorkers(fixture("pid-app.ts"));
    await w.ready();
    for (let i = 0; i < 5; i++) await get(w.port);
    const [worker] = w.workers;
    worker?.proc.kill("SIGTERM");
    expect(await worker?.exited).toBe(0);
    expect(w.stdout()).toBe("");
  });
});
