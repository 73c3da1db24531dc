// `supervisor run` from source, with real workers on a real port.
import { describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  childPids,
  distinctPids,
  fixture,
  freePort,
  get,
  isAlive,
  pidOf,
  ROOT,
  startSupervisor,
  waitFor,
} from "./helpers.ts";

const app = fixture("pid-app.ts");
const READY = /ready: \d+ workers? listening/;

describe("serving", () => {
  test("-w 2: responses come from 2 distinct worker pids, each with PORT and a slot id", async () => {
    await using sup = startSupervisor(["run", app, "-w", "2"]);
    await sup.waitForOutput(READY);
    const pids = await distinctPids(sup.port, 2);
    expect([...pids].sort()).toEqual(sup.workers().sort());
    const bodies = new Set<string>();
    await waitFor(async () => {
      const { body } = await get(sup.port);
      bodies.add(body.replace(/pid \d+ /, ""));
      return bodies.size === 2;
    }, "both slots");
    expect([...bodies].sort()).toEqual([`slot 0 port ${sup.port}\n`, `slot 1 port ${sup.port}\n`]);
    expect(sup.output()).toMatch(
      new RegExp(`ready: 2 workers listening on http://0.0.0.0:${sup.port} in \\d+ ms \\(pids \\d+, \\d+\\)`),
    );
  });

  test("WebSocket echo through a worker", async () => {
    await using sup = startSupervisor(["run", app, "-w", "2"]);
    await sup.waitForOutput(READY);
    const ws = new WebSocket(`ws://127.0.0.1:${sup.port}/ws`);
    const reply = new Promise<string>((resolve, reject) => {
      ws.onmessage = (e) => resolve(String(e.data));
      ws.onerror = () => reject(new Error("websocket error"));
    });
    await new Promise((resolve) => (ws.onopen = resolve));
    ws.send("hello");
    expect(await reply).toBe("echo hello");
    ws.close();
  });

  test("Bun routes table without fetch", async () => {
    await using sup = startSupervisor(["run", fixture("routes-app.ts")]);
    await sup.waitForOutput(READY);
    expect((await get(sup.port, "/")).body).toMatch(/^routes pid \d+/);
    expect((await get(sup.port, "/static")).body).toBe("static\n");
    expect(JSON.parse((await get(sup.port, "/api/42")).body).id).toBe("42");
  });

  test("Hono instance exported as `export default app`", async () => {
    await using sup = startSupervisor(["run", fixture("hono/instance.ts"), "-w", "2"]);
    await sup.waitForOutput(READY);
    await distinctPids(sup.port, 2);
  });

  test("WEB_CONCURRENCY sets the worker count, -w wins over it", async () => {
    await using a = startSupervisor(["run", app], { env: { WEB_CONCURRENCY: "3" } });
    await a.waitForOutput(/ready: 3 workers/);
    await using b = startSupervisor(["run", app, "-w", "1"], { env: { WEB_CONCURRENCY: "3" } });
    await b.waitForOutput(/ready: 1 worker listening/);
  });
});

describe("restarts", () => {
  test("SIGKILL one worker: the other keeps serving and a new worker takes the same slot", async () => {
    await using sup = startSupervisor(["run", app, "-w", "2"]);
    await sup.waitForOutput(READY);
    const before = await distinctPids(sup.port, 2);
    const [victim, survivor] = [...before] as [number, number];
    const victimSlot = await waitFor(async () => {
      const { body } = await get(sup.port);
      return pidOf(body) === victim ? /slot (\d)/.exec(body)?.[1] : undefined;
    }, "the victim's slot");
    process.kill(victim, "SIGKILL");
    await waitFor(() => !isAlive(victim), "the victim to die");
    // Every request from now on is answered, by the survivor or the replacement.
    const seen = new Set<number>();
    await waitFor(async () => {
      const { status, body } = await get(sup.port);
      expect(status).toBe(200);
      seen.add(pidOf(body));
      return sup.workers().length === 2 && seen.size >= 2 && !sup.workers().includes(victim);
    }, "a replacement worker to serve");
    expect(seen.has(victim)).toBe(false);
    expect(seen.has(survivor)).toBe(true);
    const replacement = sup.workers().find((p) => p !== survivor) as number;
    await waitFor(async () => {
      const { body } = await get(sup.port);
      return pidOf(body) === replacement && body.includes(`slot ${victimSlot}`);
    }, "the replacement in the victim's slot");
    expect(sup.output()).toMatch(
      new RegExp(
        `worker ${victimSlot} \\(pid ${victim}\\) died: signal SIGKILL \\(perhaps out of memory\\?\\) after [\\d.]+ m?s; restarting`,
      ),
    );
  });

  test("a worker that keeps dying soon after start is restarted with backoff, not in a tight loop", async () => {
    await using sup = startSupervisor(["run", fixture("crash-app.ts")], { env: { CRASH_AFTER_MS: "30" } });
    await sup.waitForOutput(/restarting in 150 ms \(3 early deaths in a row\)/, 15_000);
    expect(sup.output()).toMatch(/restarting in 100 ms \(2 early deaths in a row\)/);
    expect(isAlive(sup.pid)).toBe(true);
  });
});

describe("a checkout anywhere", () => {
  test("run from source in a checkout whose path has a space: the workers start and serve", async () => {
    // A copy of what `bun src/cli.ts` reads, under a directory named with a space (file URLs spell it
    // %20: the worker's sources were once looked for there).
    const checkout = mkdtempSync(join(tmpdir(), "sv checkout "));
    try {
      for (const part of ["src", "package.json", "tsconfig.json", "bunfig.toml"])
        cpSync(join(ROOT, part), join(checkout, part), { recursive: true });
      symlinkSync(join(ROOT, "node_modules"), join(checkout, "node_modules"));
      const port = freePort();
      await using sup = startSupervisor(
        [process.execPath, join(checkout, "src", "cli.ts"), "run", app, "-w", "1", "-p", String(port)],
        { raw: true, port, cwd: checkout },
      );
      await sup.waitForOutput(READY);
      expect((await get(port)).status).toBe(200);
    } finally {
      rmSync(checkout, { recursive: true, force: true });
    }
  });
});

describe("a closed stdout (supervisor run ... | head -1)", () => {
  test("log lines that cannot be written are dropped: no EPIPE noise, restarts still happen", async () => {
    const port = freePort();
    const runtimeDir = mkdtempSync(join(tmpdir(), "sv-runtime-"));
    const proc = Bun.spawn(
      [process.execPath, join(ROOT, "src", "cli.ts"), "run", app, "-w", "2", "-p", String(port)],
      {
        stdout: "pipe",
        stderr: "pipe",
        env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir },
      },
    );
    try {
      const reader = proc.stdout.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(first).toMatch(/starting 2 workers/);
      await reader.cancel(); // the reader goes away, as `head -1` does
      await waitFor(() => childPids(proc.pid).length === 2, "2 workers");
      // The victim is a worker that answered (from source, the supervisor may briefly run other children).
      const victim = await waitFor(async () => pidOf((await get(port)).body), "serving");
      process.kill(victim as number, "SIGKILL");
      await waitFor(() => {
        const kids = childPids(proc.pid);
        return kids.length === 2 && !kids.includes(victim as number);
      }, "a replacement");
      process.kill(proc.pid, "SIGTERM");
      expect(await proc.exited).toBe(0);
      const stderr = await new Response(proc.stderr).text();
      expect(stderr).not.toMatch(/EPIPE|^\s+at /m);
      expect(stderr).toMatch(/died: signal SIGKILL/);
    } finally {
      proc.kill("SIGKILL");
      await proc.exited;
      rmSync(runtimeDir, { recursive: true, force: true });
    }
  });
});

describe("signals", () => {
  test("TERM: a request in flight completes with 200, exit 0, nothing left behind", async () => {
    await using sup = startSupervisor(["run", app, "-w", "2"]);
    await sup.waitForOutput(READY);
    const workers = sup.workers();
    const slow = get(sup.port, "/slow?ms=1500", 10_000);
    await sup.waitForOutput(/slow request started/); // in flight in a worker before TERM
    process.kill(sup.pid, "SIGTERM");
    const res = await slow;
    expect(res.status).toBe(200);
    expect(await sup.exited).toBe(0);
    for (const pid of workers) expect(isAlive(pid)).toBe(false);
    expect(sup.output()).toMatch(/shutting down \(SIGTERM received\): stopping 2 workers/);
  });

  test("INT is graceful too; a second INT stops at once", async () => {
    await using sup = startSupervisor(["run", app, "-w", "2"]);
    await sup.waitForOutput(READY);
    const slow = get(sup.port, "/slow?ms=20000", 30_000).catch(() => ({ status: 0, body: "" }));
    await sup.waitForOutput(/slow request started/);
    process.kill(sup.pid, "SIGINT");
    await sup.waitForOutput(/shutting down \(SIGINT received\)/);
    process.kill(sup.pid, "SIGINT");
    expect(await sup.exited).toBe(0);
    expect(sup.output()).toMatch(/stopping now \(SIGINT received again\)/);
    expect((await slow).status).toBe(0);
  });

  test("QUIT stops at once with exit 0", async () => {
    await using sup = startSupervisor(["run", app, "-w", "2"]);
    await sup.waitForOutput(READY);
    const workers = sup.workers();
    process.kill(sup.pid, "SIGQUIT");
    expect(await sup.exited).toBe(0);
    for (const pid of workers) expect(isAlive(pid)).toBe(false);
  });

  test("USR1 is forwarded to every worker; HUP, TTIN, TTOU do not kill the supervisor", async () => {
    await using sup = startSupervisor(["run", app, "-w", "2"]);
    await sup.waitForOutput(READY);
    const workers = sup.workers();
    process.kill(sup.pid, "SIGUSR1");
    for (const pid of workers) await sup.waitForOutput(new RegExp(`signal SIGUSR1 pid ${pid}`));
    for (const signal of ["SIGHUP", "SIGTTIN", "SIGTTOU"] as const) process.kill(sup.pid, signal);
    await sup.waitForOutput(/reload finished/);
    expect((await get(sup.port)).status).toBe(200);
    expect(isAlive(sup.pid)).toBe(true);
  });

  test("SIGKILL the supervisor: no worker survives 1 s later and the port is free", async () => {
    await using sup = startSupervisor(["run", app, "-w", "3"]);
    await sup.waitForOutput(READY);
    const workers = sup.workers();
    expect(workers).toHaveLength(3);
    process.kill(sup.pid, "SIGKILL");
    const killedAt = performance.now();
    await waitFor(() => workers.every((pid) => !isAlive(pid)), "every worker to exit", 1_000);
    const elapsed = performance.now() - killedAt;
    expect(elapsed).toBeLessThan(1_000);
    const probe = Bun.listen({ hostname: "0.0.0.0", port: sup.port, socket: { data() {} } });
    probe.stop(true);
  });
});
