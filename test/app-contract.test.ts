// The app contract beyond serving, under the compiled binary: start-up work (top-level await) before
// a worker counts as ready, the app's SIGTERM listeners as its shutdown work, timeouts that let long
// requests finish, production mode, a clean environment for the app's children, the body limit, and
// one clear line for what cannot be served.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinary, fixture, get, isAlive, runToExit, startSupervisor, waitFor } from "./helpers.ts";

const READY = /ready: \d+ workers? listening/;
const binary = { binary: true };
const APP = fixture("lifespan/bun-app.ts");
const tempDir = () => mkdtempSync(join(tmpdir(), "sv-contract-"));

beforeAll(() => {
  ensureBinary();
}, 120_000);

describe("shutdown work: the app's SIGTERM listeners", () => {
  test("an async listener that needs 1.5 s runs to its end after the request in flight, exit 0", async () => {
    const marker = join(tempDir(), "shutdown.log");
    await using sup = startSupervisor(["run", APP, "-w", "2", "--graceful-timeout", "8"], {
      ...binary,
      env: { SHUTDOWN_MS: "1500", SHUTDOWN_MARKER: marker },
    });
    await sup.waitForOutput(READY);
    const workers = sup.workers();
    const slow = get(sup.port, "/slow?ms=600", 10_000);
    await sup.waitForOutput(/slow request started in \d+/);
    const t0 = performance.now();
    process.kill(sup.pid, "SIGTERM");
    expect(await slow).toEqual({ status: 200, body: expect.stringMatching(/^slow pid \d+$/) });
    expect(await sup.exited).toBe(0);
    expect(performance.now() - t0).toBeGreaterThan(1_500);
    const done = readFileSync(marker, "utf8").trim().split("\n");
    expect(done.map((line) => Number(line.split(" ")[1])).sort()).toEqual([...workers].sort());
    for (const pid of workers) expect(isAlive(pid)).toBe(false);
  });

  test("Elysia: app.stop() in a SIGTERM listener runs its onStop hooks to their end", async () => {
    const marker = join(tempDir(), "shutdown.log");
    await using sup = startSupervisor(["run", fixture("lifespan/elysia-stop.ts"), "-w", "2"], {
      ...binary,
      env: { SHUTDOWN_MARKER: marker },
    });
    await sup.waitForOutput(READY);
    const workers = sup.workers();
    process.kill(sup.pid, "SIGTERM");
    expect(await sup.exited).toBe(0);
    const done = readFileSync(marker, "utf8").trim().split("\n");
    expect(done.map((line) => Number(line.split(" ")[1])).sort()).toEqual([...workers].sort());
  });

  test("shutdown work past --graceful-timeout: the worker says so and exits, the supervisor still exits 0", async () => {
    await using sup = startSupervisor(["run", APP, "-w", "1", "--graceful-timeout", "1"], {
      ...binary,
      env: { SHUTDOWN_MS: "20000" },
    });
    await sup.waitForOutput(READY);
    process.kill(sup.pid, "SIGTERM");
    expect(await sup.exited).toBe(0);
    expect(sup.output()).toMatch(
      /worker 0 \(pid \d+\): shutdown work still running after --graceful-timeout 1s; exiting/,
    );
    expect(sup.output()).toMatch(/stopped \(shutdown\): exit code 1/);
  });

  test("TERM while the app's start-up work runs: no worker is left, exit 0", async () => {
    await using sup = startSupervisor(["run", APP, "-w", "2"], { ...binary, env: { STARTUP_MS: "20000" } });
    await waitFor(() => sup.workers().length === 2, "2 workers starting");
    const workers = sup.workers();
    process.kill(sup.pid, "SIGTERM");
    expect(await sup.exited).toBe(0);
    for (const pid of workers) expect(isAlive(pid)).toBe(false);
  });
});

describe("start-up work: top-level await", () => {
  test("a worker is ready only when its start-up work is done", async () => {
    await using sup = startSupervisor(["run", APP, "-w", "2"], { ...binary, env: { STARTUP_MS: "700" } });
    const line = await sup.waitForOutput(/ready: 2 workers listening on \S+ in ([\d.]+) (ms|s)/);
    const [, n, unit] = /in ([\d.]+) (ms|s)/.exec(line) ?? [];
    expect(Number(n) * (unit === "s" ? 1000 : 1)).toBeGreaterThanOrEqual(700);
    expect((await get(sup.port)).status).toBe(200);
  });

  test("start-up work that fails is a boot error with the app's own message, once, exit 3", async () => {
    const { code, stderr, stdout } = await runToExit(["run", APP, "-w", "3"], {
      ...binary,
      env: { STARTUP_FAILS: "connect ECONNREFUSED 127.0.0.1:5432" },
    });
    expect(code).toBe(3);
    const output = stdout + stderr;
    expect(output.match(/database unreachable: connect ECONNREFUSED 127\.0\.0\.1:5432/g)).toHaveLength(1);
  });
});

describe("timeouts", () => {
  test("a request that takes 11 s (longer than Bun's default idleTimeout of 10 s) completes with the defaults", async () => {
    await using sup = startSupervisor(["run", APP, "-w", "1"], binary);
    await sup.waitForOutput(READY);
    const res = await get(sup.port, "/slow?ms=11000", 20_000);
    expect(res.status).toBe(200);
  }, 30_000);

  test("--keep-alive 1 closes a connection left idle for 1 s", async () => {
    await using sup = startSupervisor(["run", APP, "-w", "1", "--keep-alive", "1"], binary);
    await sup.waitForOutput(READY);
    let answered = "";
    let closedAt = 0;
    const t0 = performance.now();
    const socket = await Bun.connect({
      hostname: "127.0.0.1",
      port: sup.port,
      socket: {
        data(_s, data) {
          answered += data.toString();
        },
        close() {
          closedAt = performance.now();
        },
      },
    });
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await waitFor(() => closedAt > 0, "the server to close the idle connection", 5_000);
    expect(answered).toMatch(/^HTTP\/1\.1 200/);
    expect(closedAt - t0).toBeGreaterThan(900);
  });

  test("--keep-alive above Bun's 255 s is a usage error", async () => {
    const { code, stderr } = await runToExit(["run", APP, "--keep-alive", "300"], binary);
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toEqual([
      expect.stringMatching(/--keep-alive must be at most 255 seconds/),
    ]);
  });
});

describe("production by default, and a clean environment", () => {
  test("a thrown error is a plain 500: no error page with the message and source", async () => {
    await using sup = startSupervisor(["run", APP, "-w", "1"], binary);
    await sup.waitForOutput(READY);
    const res = await get(sup.port, "/throw");
    expect(res.status).toBe(500);
    expect(res.body).not.toContain("secret detail");
    expect(res.body.length).toBeLessThan(200);
  });

  test("the app's children do not see BUN_BE_BUN nor the supervisor's channel, yet process.execPath still runs as bun", async () => {
    await using sup = startSupervisor(["run", APP, "-w", "1"], binary);
    await sup.waitForOutput(READY);
    // No IPC channel either: process.send is undefined, as under `bun app.ts`.
    expect(JSON.parse((await get(sup.port, "/spawn")).body)).toEqual({
      bunBeBun: false,
      execPathSays: "42",
      childHoldsChannel: false,
      processSend: "undefined",
    });
  });

  test("--max-body-size: a larger body gets 413, a smaller one is served", async () => {
    await using sup = startSupervisor(["run", APP, "-w", "1", "--max-body-size", "1K"], binary);
    await sup.waitForOutput(READY);
    const post = (bytes: number) =>
      fetch(`http://127.0.0.1:${sup.port}/`, { method: "POST", body: "x".repeat(bytes) });
    expect((await post(2048)).status).toBe(413);
    const small = await post(512);
    expect(await small.text()).toBe("got 512");
  });

  test("--max-body-size with --access-log: the refusal is logged as 413", async () => {
    await using sup = startSupervisor(
      ["run", APP, "-w", "1", "--max-body-size", "1K", "--access-log"],
      binary,
    );
    await sup.waitForOutput(READY);
    const post = (body: string | ReadableStream<Uint8Array>) =>
      fetch(`http://127.0.0.1:${sup.port}/`, { method: "POST", body });
    expect((await post("x".repeat(2048))).status).toBe(413);
    await sup.waitForOutput(/\[worker 0\] POST \/ 413 [\d.]+ms pid \d+/);
    expect(await (await post("x".repeat(512))).text()).toBe("got 512");
    // A body without a declared length (chunked) is limited while it is read.
    const chunks = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(new Uint8Array(600));
        controller.close();
      },
    });
    expect((await post(chunks)).status).not.toBe(200);
  });
});

describe("clear words for what is refused (exit 2 or 3, one line)", () => {
  test("a default export that is a Promise says how to fix it", async () => {
    const { code, stderr } = await runToExit(
      ["run", fixture("lifespan/promise-export.ts"), "-w", "2"],
      binary,
    );
    expect(code).toBe(3);
    expect(stderr).toMatch(/its default export is a Promise .*export default await createApp\(\)/);
  });

  test("a .json entry whose fetch is a string says so", async () => {
    const { code, stderr } = await runToExit(["run", fixture("lifespan/fetch-string.json")], binary);
    expect(code).toBe(3);
    expect(stderr).toMatch(/its default export is an object whose fetch is a string, not a function/);
  });

  test("an entry of binary garbage: one line, exit 2, no raw bytes on the terminal", async () => {
    const entry = join(tempDir(), "app.js");
    writeFileSync(entry, Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919 + 13) % 256)));
    const { code, stdout, stderr } = await runToExit(["run", entry], binary);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe(
      `supervisor: app file is not JavaScript or TypeScript (it holds binary data): ${entry}\n`,
    );
  });
});
