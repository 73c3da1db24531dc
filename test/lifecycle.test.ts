// The decision core without processes: feed events, check the state and the effects it asks for.
import { describe, expect, test } from "bun:test";
import { activeWorkers, decide, initialState, readyWorkers } from "../src/core/lifecycle.ts";
import { restartBackoff } from "../src/core/timings.ts";
import type { Config, Effect, Event, State } from "../src/core/types.ts";

const config: Config = {
  workers: 2,
  bootTimeoutMs: 30_000,
  gracefulTimeoutMs: 30_000,
  timeoutMs: 0,
  maxMemoryBytes: 0,
  maxRestarts: 16,
  shutdownDelayMs: 0,
  address: "http://0.0.0.0:3000",
};

/** A fake clock and a recorder: the core is driven exactly as the shell drives it. */
class Driver {
  state: State;
  now = 0;
  effects: Effect[] = [];
  private nextPid = 100;
  constructor(overrides: Partial<Config> = {}) {
    this.state = initialState({ ...config, ...overrides }, 0);
  }
  send(event: Event, advanceMs = 0): Effect[] {
    this.now += advanceMs;
    const d = decide(this.state, event, this.now);
    this.state = d.state;
    this.effects.push(...d.effects);
    // Like the host: every spawn gets a pid at once.
    for (const e of d.effects)
      if (e.type === "spawn") this.send({ type: "spawned", id: e.id, pid: this.nextPid++ });
    return d.effects;
  }
  /** Start and make every starting worker ready. */
  boot(): this {
    this.send({ type: "start" });
    this.readyAll();
    return this;
  }
  readyAll(advanceMs = 10): void {
    for (const w of this.state.workers.filter((x) => x.phase === "starting"))
      this.send({ type: "ready", id: w.id }, advanceMs);
  }
  worker(slot: number) {
    const w = activeWorkers(this.state).find((x) => x.slot === slot);
    if (!w) throw new Error(`no active worker in slot ${slot}`);
    return w;
  }
  logs(level?: string): string[] {
    return this.effects
      .filter((e) => e.type === "log" && (!level || e.level === level))
      .map((e) => (e as { message: string }).message);
  }
}

const of = <T extends Effect["type"]>(fx: Effect[], type: T) =>
  fx.filter((e): e is Extract<Effect, { type: T }> => e.type === type);

describe("start-up", () => {
  test("start spawns one worker per slot, each with a boot timer", () => {
    const d = new Driver({ workers: 3 });
    const fx = d.send({ type: "start" });
    expect(of(fx, "spawn").map((e) => e.slot)).toEqual([0, 1, 2]);
    expect(of(fx, "set-timer").map((e) => e.key)).toEqual(["boot:1", "boot:2", "boot:3"]);
    expect(d.state.phase).toBe("booting");
  });

  test("all ready: running, one ready line with the address, time and pids", () => {
    const d = new Driver().boot();
    expect(d.state.phase).toBe("running");
    expect(d.logs("info")).toEqual([
      "ready: 2 workers listening on http://0.0.0.0:3000 in 20 ms (pids 100, 101)",
    ]);
  });

  test.each([
    ["exit before ready", { type: "exit", id: 1, code: 3, signal: null } as Event],
    ["killed before ready", { type: "exit", id: 1, code: null, signal: "SIGKILL" } as Event],
  ])("a worker that never got ready at start-up stops everything with exit 3 (%s)", (_, ev) => {
    const d = new Driver();
    d.send({ type: "start" });
    d.send({ type: "boot-error", id: 1, message: "SyntaxError: oops" });
    const fx = d.send(ev);
    expect(d.state.phase).toBe("stopping");
    expect(d.state.exitCode).toBe(3);
    expect(of(fx, "kill")).toEqual([{ type: "kill", id: 2, signal: "SIGTERM" }]);
    expect(d.logs("error")).toEqual(["worker failed to boot: SyntaxError: oops"]);
    // The sibling fails the same way: its error is not printed again, and the supervisor exits 3.
    d.send({ type: "boot-error", id: 2, message: "SyntaxError: oops" });
    const last = d.send({ type: "exit", id: 2, code: 3, signal: null });
    expect(d.logs("error")).toHaveLength(1);
    expect(of(last, "exit")).toEqual([{ type: "exit", code: 3 }]);
  });

  test("boot timeout kills the worker; its exit is a boot failure", () => {
    const d = new Driver({ workers: 1, bootTimeoutMs: 500 });
    d.send({ type: "start" });
    const fx = d.send({ type: "timer", key: "boot:1" }, 500);
    expect(of(fx, "kill")).toEqual([{ type: "kill", id: 1, signal: "SIGKILL" }]);
    const end = d.send({ type: "exit", id: 1, code: null, signal: "SIGKILL" });
    expect(of(end, "exit")).toEqual([{ type: "exit", code: 3 }]);
    expect(d.logs("error").at(-1)).toBe("worker failed to boot: not ready within --boot-timeout 0.5s");
  });
});

describe("reaping: an unexpected exit is replaced in the same slot", () => {
  test.each([
    ["exit 0", 0, null, "exit code 0"],
    ["exit 1", 1, null, "exit code 1"],
    ["exit 3 after ready", 3, null, "exit code 3"],
    ["SIGTERM from outside", null, "SIGTERM", "signal SIGTERM"],
    ["SIGKILL (OOM?)", null, "SIGKILL", "signal SIGKILL (perhaps out of memory?)"],
  ])("%s", (_, code, signal, how) => {
    const d = new Driver().boot();
    const victim = d.worker(1);
    const fx = d.send({ type: "exit", id: victim.id, code, signal }, 5_000);
    expect(of(fx, "spawn")).toEqual([{ type: "spawn", id: 3, slot: 1 }]);
    expect(d.logs("warn")).toEqual([`worker 1 (pid 101) died: ${how} after 5.0 s; restarting`]);
    d.send({ type: "ready", id: 3 }, 20);
    expect(d.logs("info").at(-1)).toBe("worker 1 (pid 102) ready in 20 ms");
    expect(d.state.restarts.crash).toBe(1);
    expect(d.state.slotRestarts).toEqual({ 1: 1 });
  });

  test("an exit of an unknown worker id changes nothing", () => {
    const d = new Driver().boot();
    const before = d.state;
    expect(d.send({ type: "exit", id: 99, code: 1, signal: null })).toEqual([]);
    expect(d.state).toEqual(before);
  });

  test("early deaths back off ×1.5 from 100 ms, capped at 15 s; a long-lived worker resets the count", () => {
    const d = new Driver({ workers: 1 }).boot();
    const delays: number[] = [];
    for (let i = 0; i < 14; i++) {
      const w = d.worker(0);
      const fx = d.send({ type: "exit", id: w.id, code: 1, signal: null }, 100);
      const timer = of(fx, "set-timer").find((e) => e.key === "restart:0");
      delays.push(timer ? timer.ms : 0);
      if (timer) {
        expect(of(fx, "spawn")).toEqual([]);
        d.send({ type: "timer", key: "restart:0" }, timer.ms);
      }
      d.readyAll(10);
    }
    expect(delays).toEqual([0, 100, 150, 225, 338, 506, 759, 1139, 1709, 2563, 3844, 5767, 8650, 12975]);
    const w = d.worker(0);
    d.send({ type: "exit", id: w.id, code: 1, signal: null }, 60_000);
    expect(d.state.failures[0]).toBe(1);
    expect(restartBackoff(40)).toBe(15_000);
  });
});

describe("signals", () => {
  test("TERM drains every worker with a kill deadline, and exits 0 when the last is gone", () => {
    const d = new Driver().boot();
    const fx = d.send({ type: "signal", signal: "SIGTERM" });
    expect(of(fx, "kill").map((e) => e.signal)).toEqual(["SIGTERM", "SIGTERM"]);
    expect(of(fx, "set-timer").map((e) => [e.key, e.ms])).toEqual([
      ["kill:1", 31_000],
      ["kill:2", 31_000],
    ]);
    d.send({ type: "exit", id: 1, code: 0, signal: null });
    const end = d.send({ type: "exit", id: 2, code: 0, signal: null });
    expect(of(end, "exit")).toEqual([{ type: "exit", code: 0 }]);
    expect(of(end, "spawn")).toEqual([]);
  });

  test("a worker still alive after the graceful timeout is killed", () => {
    const d = new Driver().boot();
    d.send({ type: "signal", signal: "SIGTERM" });
    const fx = d.send({ type: "timer", key: "kill:1" }, 31_000);
    expect(of(fx, "kill")).toEqual([{ type: "kill", id: 1, signal: "SIGKILL" }]);
  });

  test("second INT and QUIT kill at once", () => {
    const d = new Driver().boot();
    d.send({ type: "signal", signal: "SIGINT" });
    const fx = d.send({ type: "signal", signal: "SIGINT" });
    expect(of(fx, "kill").map((e) => e.signal)).toEqual(["SIGKILL", "SIGKILL"]);
    const q = new Driver().boot();
    expect(of(q.send({ type: "signal", signal: "SIGQUIT" }), "kill").map((e) => e.signal)).toEqual([
      "SIGKILL",
      "SIGKILL",
    ]);
  });

  test("USR1 and USR2 are forwarded to every worker", () => {
    const d = new Driver().boot();
    expect(of(d.send({ type: "signal", signal: "SIGUSR2" }), "kill")).toEqual([
      { type: "kill", id: 1, signal: "SIGUSR2" },
      { type: "kill", id: 2, signal: "SIGUSR2" },
    ]);
  });

  test("a crash during shutdown is not restarted", () => {
    const d = new Driver().boot();
    d.send({ type: "signal", signal: "SIGTERM" });
    expect(of(d.send({ type: "exit", id: 1, code: null, signal: "SIGKILL" }), "spawn")).toEqual([]);
  });
});

describe("reconcile: scaling and rolling replacement", () => {
  test("TTIN adds a worker in the next slot; TTOU drains the highest slot; never below 1", () => {
    const d = new Driver().boot();
    expect(of(d.send({ type: "signal", signal: "SIGTTIN" }), "spawn")).toEqual([
      { type: "spawn", id: 3, slot: 2 },
    ]);
    d.readyAll();
    expect(of(d.send({ type: "signal", signal: "SIGTTOU" }), "kill")).toEqual([
      { type: "kill", id: 3, signal: "SIGTERM" },
    ]);
    d.send({ type: "signal", signal: "SIGTTOU" });
    expect(of(d.send({ type: "signal", signal: "SIGTTOU" }), "kill")).toEqual([]);
    expect(d.state.target).toBe(1);
  });

  test("HUP replaces workers one at a time, draining each old one only once its replacement is ready", () => {
    const d = new Driver().boot();
    const fx = d.send({ type: "signal", signal: "SIGHUP" });
    expect(of(fx, "spawn")).toEqual([{ type: "spawn", id: 3, slot: 0 }]);
    expect(of(fx, "kill")).toEqual([]);
    expect(readyWorkers(d.state)).toHaveLength(2);
    const second = d.send({ type: "ready", id: 3 }, 50);
    expect(of(second, "kill")).toEqual([{ type: "kill", id: 1, signal: "SIGTERM" }]);
    expect(of(second, "spawn")).toEqual([{ type: "spawn", id: 4, slot: 1 }]);
    const done = d.send({ type: "ready", id: 4 }, 50);
    expect(of(done, "kill")).toEqual([{ type: "kill", id: 2, signal: "SIGTERM" }]);
    expect(d.logs("info").at(-1)).toBe("reload finished: 2 workers replaced in 100 ms");
    // Drained old workers exiting 0 are not restarted.
    expect(of(d.send({ type: "exit", id: 1, code: 0, signal: null }), "spawn")).toEqual([]);
  });

  test("a reload whose new worker fails to boot stops, and the old workers keep serving", () => {
    const d = new Driver().boot();
    d.send({ type: "signal", signal: "SIGHUP" });
    d.send({ type: "boot-error", id: 3, message: "SyntaxError: bad deploy" });
    const fx = d.send({ type: "exit", id: 3, code: 3, signal: null });
    expect(of(fx, "spawn")).toEqual([]);
    expect(of(fx, "kill")).toEqual([]);
    expect(readyWorkers(d.state).map((w) => w.id)).toEqual([1, 2]);
    expect(d.state.workers.every((w) => !w.retiring)).toBe(true);
    expect(d.logs("error")).toEqual([
      "reload failed, keeping 2 running worker(s) on the old code: SyntaxError: bad deploy",
    ]);
    expect(d.state.phase).toBe("running");
  });

  test("a hung worker (no heartbeat within --timeout) is killed and then replaced", () => {
    const d = new Driver({ timeoutMs: 2_000 }).boot();
    expect(of(d.effects, "set-timer").some((e) => e.key === "heartbeat:1" && e.ms === 2_000)).toBe(true);
    d.send({ type: "heartbeat", id: 1, requests: 5 }, 500);
    const fx = d.send({ type: "timer", key: "heartbeat:1" }, 2_000);
    expect(of(fx, "kill")).toEqual([{ type: "kill", id: 1, signal: "SIGKILL" }]);
    expect(of(d.send({ type: "exit", id: 1, code: null, signal: "SIGKILL" }), "spawn")).toHaveLength(1);
  });
});
