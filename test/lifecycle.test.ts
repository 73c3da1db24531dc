// The decision core without processes: feed events, check the state and the effects it asks for.
import { describe, expect, test } from "bun:test";
import { requestDeadlineMs } from "../src/core/deadlines.ts";
import {
  activeWorkers,
  decide,
  initialState,
  isSettled,
  MAX_WORKERS,
  readyWorkers,
  scaleRefusal,
} from "../src/core/lifecycle.ts";
import { memorySampleDelay, restartBackoff } from "../src/core/timings.ts";
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
  /** The heartbeat check's timer fires after `advanceMs`; the beat files are answered with `beats`
   * (the workers whose beat moved), as the host does. */
  checkBeats(beats: { id: number; requests: number; at: number }[] = [], advanceMs = 0): Effect[] {
    const fx = this.send({ type: "timer", key: "heartbeat-sample" }, advanceMs);
    if (!fx.some((e) => e.type === "read-heartbeats")) return fx;
    return [...fx, ...this.send({ type: "heartbeats", beats })];
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

  test("all ready: running, one line per worker's start-up, one ready line with the address, time and pids", () => {
    const d = new Driver();
    d.send({ type: "start" });
    d.send({ type: "ready", id: 1, startupMs: 812 }, 900);
    d.send({ type: "ready", id: 2 }, 10);
    expect(d.state.phase).toBe("running");
    expect(d.logs("info")).toEqual([
      "worker 0 (pid 100): app started in 812 ms",
      "worker 1 (pid 101): app started in 910 ms",
      "ready: 2 workers listening on http://0.0.0.0:3000 in 910 ms (pids 100, 101)",
    ]);
    expect(of(d.effects, "hook")).toEqual([{ type: "hook", name: "onReady" }]);
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
    expect(of(fx, "spawn")).toEqual([{ type: "spawn", id: 3, slot: 1, heartbeatMs: 5_000 }]);
    expect(d.logs("warn")).toEqual([`worker 1 (pid 101) died: ${how} after 5.0 s; restarting`]);
    d.send({ type: "ready", id: 3 }, 20);
    expect(d.logs("info").at(-1)).toBe("worker 1 (pid 102): app started in 20 ms");
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

describe("settled: where the supervisor rests between events (it then unmaps its start-up code)", () => {
  /** Let every draining worker exit. */
  const drained = (d: Driver) => {
    for (const w of d.state.workers.filter((x) => x.phase === "draining"))
      d.send({ type: "exit", id: w.id, code: 0, signal: null }, 10);
  };

  test("only once every wanted worker is ready, and again after a crash's replacement", () => {
    const d = new Driver();
    d.send({ type: "start" });
    expect(isSettled(d.state)).toBe(false);
    d.readyAll();
    expect(isSettled(d.state)).toBe(true);
    d.send({ type: "exit", id: d.worker(0).id, code: 1, signal: null }, 5_000);
    expect(isSettled(d.state)).toBe(false);
    d.readyAll();
    expect(isSettled(d.state)).toBe(true);
  });

  test("not during a rolling reload, until the last old worker is gone; never while stopping", () => {
    const d = new Driver().boot();
    d.send({ type: "signal", signal: "SIGHUP" });
    while (d.state.reload) {
      expect(isSettled(d.state)).toBe(false);
      d.readyAll();
      drained(d);
    }
    expect(isSettled(d.state)).toBe(true);
    d.send({ type: "signal", signal: "SIGTTIN" });
    expect(isSettled(d.state)).toBe(false);
    d.readyAll();
    expect(isSettled(d.state)).toBe(true);
    d.send({ type: "signal", signal: "SIGTERM" });
    expect(isSettled(d.state)).toBe(false);
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

  test("USR1 is forwarded to every worker; USR2 upgrades the supervisor; `supervisor signal` forwards either", () => {
    const d = new Driver().boot();
    expect(of(d.send({ type: "signal", signal: "SIGUSR1" }), "kill")).toEqual([
      { type: "kill", id: 1, signal: "SIGUSR1" },
      { type: "kill", id: 2, signal: "SIGUSR1" },
    ]);
    const fx = d.send({ type: "signal", signal: "SIGUSR2" });
    expect(of(fx, "kill")).toEqual([]);
    expect(of(fx, "start-successor")).toHaveLength(1);
    expect(of(d.send({ type: "forward", signal: "SIGUSR2" }), "kill")).toEqual([
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
      { type: "spawn", id: 3, slot: 2, heartbeatMs: 5_000 },
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
    expect(of(fx, "spawn")).toEqual([{ type: "spawn", id: 3, slot: 0, heartbeatMs: 5_000 }]);
    expect(of(fx, "kill")).toEqual([]);
    expect(readyWorkers(d.state)).toHaveLength(2);
    const second = d.send({ type: "ready", id: 3 }, 50);
    expect(of(second, "kill")).toEqual([{ type: "kill", id: 1, signal: "SIGTERM" }]);
    expect(of(second, "spawn")).toEqual([{ type: "spawn", id: 4, slot: 1, heartbeatMs: 5_000 }]);
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
    const d = new Driver({ timeoutMs: 2_000 }).boot(); // ready at 10 and 20 ms
    // One check, when the first worker could be past --timeout: 2 s after worker 1's ready.
    expect(
      of(d.effects, "set-timer")
        .filter((e) => e.key === "heartbeat-sample")
        .at(-1)?.ms,
    ).toBe(1_990);
    // Worker 2 beat at 1.5 s; worker 1 has been silent since its ready.
    const fx = d.checkBeats([{ id: 2, requests: 5, at: 1_500 }], 1_990);
    expect(of(fx, "kill")).toEqual([{ type: "kill", id: 1, signal: "SIGKILL" }]);
    // The next check: 2 s after worker 2's beat (worker 1's exit is on its way, and not watched).
    expect(of(fx, "set-timer")).toEqual([{ type: "set-timer", key: "heartbeat-sample", ms: 1_490 }]);
    expect(of(d.checkBeats([], 500), "kill")).toEqual([]); // killed once, however late its exit
    expect(of(d.send({ type: "exit", id: 1, code: null, signal: "SIGKILL" }), "spawn")).toHaveLength(1);
  });

  test("the beats are read when the first worker could be past --timeout, not on a tick", () => {
    const d = new Driver({ timeoutMs: 2_000, workers: 3 });
    d.send({ type: "start" });
    d.send({ type: "ready", id: 1 }, 10);
    d.send({ type: "ready", id: 2 }, 10);
    const fx = d.send({ type: "timer", key: "heartbeat-sample" }, 1_990);
    // The ready workers only: worker 3 is still starting (its boot timer watches it).
    expect(of(fx, "read-heartbeats")).toEqual([{ type: "read-heartbeats", ids: [1, 2] }]);
    // Both beat (at their 500 ms pace): no kill, and the next check is 2 s after the older last beat.
    const read = d.send({
      type: "heartbeats",
      beats: [
        { id: 1, requests: 7, at: 1_900 },
        { id: 2, requests: 3, at: 1_950 },
      ],
    });
    expect(of(read, "kill")).toEqual([]);
    expect(of(read, "set-timer")).toEqual([{ type: "set-timer", key: "heartbeat-sample", ms: 1_890 }]);
    expect(d.state.workers.find((w) => w.id === 1)?.requests).toBe(7);
    // A heartbeat message (a worker without a beat file) moves its worker's deadline the same way.
    d.send({ type: "heartbeat", id: 1, requests: 8 }, 100);
    expect(d.state.workers.find((w) => w.id === 1)?.beatAt).toBe(2_110);
  });

  test("a status request reads the beats at once, even with --timeout off", () => {
    const d = new Driver().boot();
    expect(of(d.effects, "set-timer").some((e) => e.key === "heartbeat-sample")).toBe(false);
    const fx = d.send({ type: "sample-heartbeats" }, 60_000);
    expect(of(fx, "read-heartbeats")).toEqual([{ type: "read-heartbeats", ids: [1, 2] }]);
    const read = d.send({ type: "heartbeats", beats: [{ id: 2, requests: 40, at: 59_000 }] });
    expect(of(read, "kill")).toEqual([]); // silence is no fault without --timeout
    expect(of(read, "set-timer")).toEqual([]);
    expect(d.state.workers.map((w) => w.requests)).toEqual([0, 40]);
  });

  test("shutting down stops the heartbeat sampling", () => {
    const d = new Driver({ gracefulTimeoutMs: 1_000 }).boot();
    const fx = d.send({ type: "signal", signal: "SIGTERM" });
    expect(of(fx, "clear-timer").map((e) => e.key)).toContain("heartbeat-sample");
    expect(of(d.send({ type: "timer", key: "heartbeat-sample" }, 10), "read-heartbeats")).toEqual([]);
  });
});

describe("a re-read config applies to the workers kept", () => {
  test("turning --timeout off disarms the heartbeat check: no kept worker is killed as hung", () => {
    const d = new Driver({ timeoutMs: 2_000 }).boot();
    const fx = d.send({ type: "configure", config: { timeoutMs: 0 } });
    expect(of(fx, "clear-timer").map((e) => e.key)).toEqual(["heartbeat-sample"]);
    // A timer already due when the config changed fires anyway: it kills nothing.
    expect(of(d.checkBeats([], 2_000), "kill")).toEqual([]);
    expect(d.logs("error")).toEqual([]);
  });

  test("turning --timeout on arms the check for the kept workers, never sooner than two of their own beats", () => {
    const d = new Driver({ timeoutMs: 0 }).boot(); // ready at 10 and 20 ms, now 20
    const on = d.send({ type: "configure", config: { timeoutMs: 30_000 } });
    // Due 30 s after worker 1's ready.
    expect(of(on, "set-timer")).toEqual([{ type: "set-timer", key: "heartbeat-sample", ms: 29_990 }]);
    // Started with --timeout off, they beat every 5 s: a 2 s timeout would kill them between beats.
    const shorter = d.send({ type: "configure", config: { timeoutMs: 2_000 } });
    expect(of(shorter, "set-timer").map((e) => e.ms)).toEqual([9_990]);
    // Workers started from now on beat at the new pace, decided by the core at their spawn.
    expect(of(d.send({ type: "signal", signal: "SIGTTIN" }), "spawn")).toEqual([
      { type: "spawn", id: 3, slot: 2, heartbeatMs: 500 },
    ]);
  });

  test("turning --max-memory on and off starts and stops the memory sampling", () => {
    const d = new Driver().boot();
    expect(of(d.effects, "set-timer").some((e) => e.key === "memory-sample")).toBe(false);
    const on = d.send({ type: "configure", config: { maxMemoryBytes: 100 * 2 ** 20 } });
    expect(of(on, "set-timer")).toEqual([{ type: "set-timer", key: "memory-sample", ms: 50 }]);
    const off = d.send({ type: "configure", config: { maxMemoryBytes: 0 } });
    expect(of(off, "clear-timer")).toEqual([{ type: "clear-timer", key: "memory-sample" }]);
    expect(d.send({ type: "timer", key: "memory-sample" }, 100)).toEqual([]);
  });
});

describe("scale bounds are the core's", () => {
  const at = (workers: number): State => ({ ...initialState({ ...config, workers }, 0), phase: "running" });

  test("TTIN at the maximum of 1024 workers is ignored", () => {
    const d = decide(at(MAX_WORKERS), { type: "signal", signal: "SIGTTIN" }, 0);
    expect(d.state.target).toBe(1024);
    expect(of(d.effects, "spawn")).toEqual([]);
    expect(d.effects).toContainEqual({
      type: "log",
      level: "warn",
      message: "scale ignored: already at 1024 workers (at most 1024)",
    });
  });

  test("a scale event above the maximum is capped at it", () => {
    expect(decide(at(1_000), { type: "scale", workers: 5_000 }, 0).state.target).toBe(1024);
  });

  test.each([
    [0, "cannot scale to 0: never below 1 worker"],
    [1_025, "cannot scale to 1025: at most 1024 workers"],
    [3, undefined],
  ])("supervisor scale %p: %p", (target, refusal) => {
    expect(scaleRefusal(at(2), target)).toBe(refusal);
    expect(scaleRefusal(initialState(config, 0), 3)).toBe("cannot scale while the supervisor is booting");
  });
});

describe("control-request deadlines follow the work", () => {
  const slow = { workers: 8, bootTimeoutMs: 5_000, gracefulTimeoutMs: 2_000 };

  test("a rolling reload of 8 workers gets one boot per worker (8 boots of 2 s each fit)", () => {
    const d = new Driver(slow).boot();
    const limit = requestDeadlineMs(d.state, { type: "reload" });
    // Before: boot + grace + 1 s = 8 s, whatever the worker count.
    expect(limit).toBeGreaterThan(8 * 2_000);
    expect(limit).toBeGreaterThanOrEqual(8 * (5_000 + 1_000));
    // A reload asked during one runs again after it: twice the work.
    d.send({ type: "signal", signal: "SIGHUP" });
    expect(requestDeadlineMs(d.state, { type: "reload" })).toBeGreaterThanOrEqual(2 * limit - 4_000);
  });

  test("stop waits out --shutdown-delay and the grace", () => {
    const d = new Driver({ ...slow, shutdownDelayMs: 20_000 }).boot();
    expect(requestDeadlineMs(d.state, { type: "stop" })).toBeGreaterThanOrEqual(20_000 + 2_000 + 1_000);
    expect(requestDeadlineMs(d.state, { type: "scale", workers: 9 })).toBeGreaterThanOrEqual(5_000 + 2_000);
  });
});

describe("reloads are coalesced, and each answer covers the code it asked for", () => {
  /** Make the one starting worker ready; return what that did. */
  const readyNext = (d: Driver) => {
    const w = d.state.workers.find((x) => x.phase === "starting");
    if (!w) throw new Error("no starting worker");
    return d.send({ type: "ready", id: w.id }, 10);
  };

  test("HUP during a rolling reload: the round goes on, then replaces once what was started before it", () => {
    const d = new Driver({ workers: 3 }).boot();
    d.send({ type: "signal", signal: "SIGHUP" }); // reload 1: starts worker 4 for slot 0
    readyNext(d); // 4 ready, 1 drains, 5 starts for slot 1
    d.send({ type: "signal", signal: "SIGHUP" }); // reload 2, while 5 (reload 1's code) is starting
    d.send({ type: "signal", signal: "SIGHUP" }); // and reload 3: merged into the same re-run
    expect(d.logs("info").at(-1)).toBe(
      "reload asked during a reload: it goes on until all 4 older workers are replaced",
    );
    let spawns = 0;
    const answered: number[] = [];
    while (d.state.reload) {
      spawns += of(readyNext(d), "spawn").length;
      const seq = d.state.lastReload?.seq;
      if (seq !== undefined && seq !== answered.at(-1)) answered.push(seq);
      // Nobody is told "finished" while a worker older than their request still serves.
      if (seq !== undefined) expect(activeWorkers(d.state).every((w) => w.generation >= seq)).toBe(true);
    }
    // Reload 1 is answered once its round is done; reloads 2 and 3 at the end.
    expect(answered).toEqual([1, 3]);
    // Slot 2 (never replaced) once, then 4 and 5 (started before reload 3) once each: 3, not 6.
    expect(spawns).toBe(3);
    expect(activeWorkers(d.state).every((w) => w.generation === 3)).toBe(true);
    expect(d.state.lastReload).toMatchObject({ seq: 3, ok: true });
    expect(d.logs("info").at(-1)).toBe("reload finished: 5 workers replaced in 50 ms");
  });

  test("a HUP during the re-run's own replacement makes no third round", () => {
    const d = new Driver({ workers: 2 }).boot();
    d.send({ type: "signal", signal: "SIGHUP" });
    d.send({ type: "signal", signal: "SIGHUP" });
    // Worker 3 started for reload 1; reload 2 came while it was starting: it is replaced once more.
    const ids: number[] = [];
    while (d.state.reload) ids.push(...of(readyNext(d), "spawn").map((e) => e.id));
    expect(ids).toEqual([4, 5]);
    expect(d.state.lastReload?.seq).toBe(2);
  });

  test("a reload that fails answers every request it covers with the failure", () => {
    const d = new Driver().boot();
    d.send({ type: "signal", signal: "SIGHUP" });
    d.send({ type: "signal", signal: "SIGHUP" });
    d.send({ type: "boot-error", id: 3, message: "SyntaxError: bad deploy" });
    d.send({ type: "exit", id: 3, code: 3, signal: null });
    expect(d.state.lastReload).toMatchObject({ seq: 2, ok: false });
    expect(d.state.reload).toBeUndefined();
  });
});

describe("--max-requests and --max-memory retry a failed replacement", () => {
  test("a worker whose replacement failed to boot is recycled again on a timer, after a backoff", () => {
    const d = new Driver().boot();
    d.send({ type: "retire", id: 1, reason: "max-requests", requests: 120 });
    expect(d.logs("info").at(-1)).toBe(
      "worker 0 (pid 100) will be replaced (max-requests, after 120 requests)",
    );
    const failed = d.send({ type: "exit", id: 3, code: 3, signal: null }, 50); // the replacement failed to boot
    expect(d.logs("error").at(-1)).toMatch(
      /^could not replace worker 0 \(pid 100\) \(max-requests\), keeping it/,
    );
    // The worker asked once; the retry waits 1 s after the failure.
    expect(of(failed, "set-timer")).toEqual([{ type: "set-timer", key: "retire:1", ms: 1_000 }]);
    expect(of(d.send({ type: "heartbeat", id: 1, requests: 125 }, 100), "spawn")).toEqual([]);
    expect(of(d.send({ type: "timer", key: "retire:1" }, 900), "spawn")).toEqual([
      { type: "spawn", id: 4, slot: 0, heartbeatMs: 5_000 },
    ]);
    expect(of(d.send({ type: "ready", id: 4 }), "kill")).toEqual([
      { type: "kill", id: 1, signal: "SIGTERM" },
    ]);
  });

  test("memory is sampled while --max-memory is set: soon near the limit, rarely far below; 2 samples over replace", () => {
    const MiB = 2 ** 20;
    const d = new Driver({ maxMemoryBytes: 150 * MiB });
    expect(of(d.send({ type: "start" }), "set-timer").map((e) => e.key)).toEqual(["boot:1", "boot:2"]);
    d.readyAll();
    // A new worker's first sample comes after 50 ms.
    expect(
      of(d.effects, "set-timer")
        .filter((e) => e.key === "memory-sample")
        .map((e) => e.ms),
    ).toEqual([50, 50]);
    /** Fire the timer; answer its sample-memory effect as the shell does; return the next delay. */
    const sample = (rss0: number, rss1 = 50 * MiB) => {
      const fx = d.send({ type: "timer", key: "memory-sample" }, 50);
      expect(of(fx, "sample-memory")).toEqual([
        {
          type: "sample-memory",
          workers: [
            { id: 1, pid: 100 },
            { id: 2, pid: 101 },
          ],
        },
      ]);
      const answer = d.send({
        type: "memory",
        samples: [
          { id: 1, rssBytes: rss0 },
          { id: 2, rssBytes: rss1 },
        ],
      });
      return { next: of(answer, "set-timer").find((e) => e.key === "memory-sample")?.ms, answer };
    };
    // 100 MiB below the limit: a leak of 200 MB/s needs 500 ms to get there.
    expect(sample(50 * MiB).next).toBe(500);
    expect(sample(145 * MiB).next).toBe(50);
    expect(of(sample(151 * MiB).answer, "spawn")).toEqual([]);
    expect(of(sample(149 * MiB).answer, "spawn")).toEqual([]); // a spike: the count starts again
    sample(160 * MiB);
    expect(of(sample(200 * MiB).answer, "spawn")).toEqual([
      { type: "spawn", id: 3, slot: 0, heartbeatMs: 5_000 },
    ]);
    expect(d.logs("info").at(-1)).toBe(
      "worker 0 (pid 100) will be replaced (RSS 200 MiB above --max-memory 150 MiB)",
    );
    // TERM stops the sampling.
    const term = d.send({ type: "signal", signal: "SIGTERM" });
    expect(of(term, "clear-timer")).toContainEqual({ type: "clear-timer", key: "memory-sample" });
    expect(d.send({ type: "timer", key: "memory-sample" }, 100)).toEqual([]);
  });

  test("far below the limit, one sample a second", () => {
    expect(memorySampleDelay(2 ** 30, [60 * 2 ** 20, 80 * 2 ** 20])).toBe(1_000);
    expect(memorySampleDelay(2 ** 30, [60 * 2 ** 20, undefined])).toBe(50);
    expect(memorySampleDelay(100, [200])).toBe(50);
  });
});

describe("a SIGKILL the supervisor sent is never 'perhaps out of memory?'", () => {
  test.each([
    [
      "hung (no heartbeat)",
      (d: Driver) => d.checkBeats([{ id: 2, requests: 0, at: 1_500 }], 1_990),
      "worker 0 (pid 100) died: signal SIGKILL (sent by the supervisor: --timeout) after 2.0 s; restarting",
    ],
    [
      "QUIT",
      (d: Driver) => d.send({ type: "signal", signal: "SIGQUIT" }),
      "worker 0 (pid 100) stopped (quick shutdown): signal SIGKILL (sent by the supervisor: SIGQUIT received) after 20 ms",
    ],
    [
      "second INT",
      (d: Driver) => {
        d.send({ type: "signal", signal: "SIGINT" });
        d.send({ type: "signal", signal: "SIGINT" });
      },
      "worker 0 (pid 100) stopped (shutdown): signal SIGKILL (sent by the supervisor: SIGINT received again) after 20 ms",
    ],
    [
      "still running after the grace",
      (d: Driver) => {
        d.send({ type: "signal", signal: "SIGTERM" });
        d.send({ type: "timer", key: "kill:1" }, 31_000);
      },
      "worker 0 (pid 100) stopped (shutdown): signal SIGKILL (sent by the supervisor: --graceful-timeout) after 31.0 s",
    ],
  ])("%s", (_, cause, line) => {
    const d = new Driver({ timeoutMs: 2_000 }).boot();
    cause(d);
    d.send({ type: "exit", id: 1, code: null, signal: "SIGKILL" });
    expect(d.logs()).toContain(line);
    expect(d.logs().join("\n")).not.toContain("perhaps out of memory");
  });

  test("a boot-timeout kill of a restarted worker says so", () => {
    const d = new Driver({ bootTimeoutMs: 500 }).boot();
    d.send({ type: "exit", id: 1, code: 1, signal: null }, 5_000);
    d.send({ type: "timer", key: "boot:3" }, 500);
    d.send({ type: "exit", id: 3, code: null, signal: "SIGKILL" });
    expect(d.logs().at(-1)).toMatch(
      /^worker 0 \(pid 102\) died: signal SIGKILL \(sent by the supervisor: --boot-timeout\)/,
    );
  });
});

describe("config hooks run when the core says, as effects", () => {
  test("onWorkerExit for an unexpected death only; onReady once, when boot completes", () => {
    const d = new Driver().boot();
    expect(of(d.effects, "hook")).toEqual([{ type: "hook", name: "onReady" }]);
    const crash = d.send({ type: "exit", id: 1, code: null, signal: "SIGKILL" }, 5_000);
    expect(of(crash, "hook")).toEqual([
      { type: "hook", name: "onWorkerExit", exit: { slot: 0, pid: 100, code: null, signal: "SIGKILL" } },
    ]);
    d.readyAll();
    d.send({ type: "signal", signal: "SIGTERM" });
    expect(of(d.send({ type: "exit", id: 2, code: 0, signal: null }), "hook")).toEqual([]);
    expect(of(d.effects, "hook").filter((e) => e.name === "onReady")).toHaveLength(1);
  });
});

describe("early deaths: a worker that never got to serve", () => {
  const dies = (d: Driver, w: { id: number }, afterMs: number) =>
    d.send({ type: "exit", id: w.id, code: 1, signal: null }, afterMs);

  test.each([
    ["served a request, died 15 ms after ready", true, 15, 1, 0],
    ["never served, died 15 ms after ready", false, 15, 3, 150],
    ["never served, idle 2 s, then died", false, 2_000, 1, 0],
  ])("%s", (_, serves, lifeMs, failures, delay) => {
    const d = new Driver({ workers: 1 }).boot();
    // Two deaths before: the slot would back off if this one counts as early too.
    for (let i = 0; i < 2; i++) {
      dies(d, d.worker(0), 10);
      const timer = of(d.effects, "set-timer").find((e) => e.key === "restart:0");
      if (timer && d.state.restartPending.length) d.send({ type: "timer", key: "restart:0" }, timer.ms);
      d.readyAll();
    }
    const w = d.worker(0);
    if (serves) d.send({ type: "serving", id: w.id });
    const fx = dies(d, w, lifeMs);
    expect(d.state.failures[0]).toBe(failures);
    expect(of(fx, "set-timer").find((e) => e.key === "restart:0")?.ms ?? 0).toBe(delay);
  });

  test("a heartbeat counting requests is proof of serving too", () => {
    const d = new Driver({ workers: 1, maxRestarts: 1 }).boot();
    d.send({ type: "heartbeat", id: 1, requests: 3 }, 10);
    dies(d, d.worker(0), 10);
    d.readyAll();
    d.send({ type: "heartbeat", id: 2, requests: 1 }, 10);
    dies(d, d.worker(0), 10);
    expect(d.state.phase).toBe("running");
  });

  test("a worker that crashes right after ready, every time, is still a crash loop: exit 4", () => {
    const d = new Driver({ workers: 1, maxRestarts: 3 }).boot();
    for (let i = 0; i < 10 && d.state.phase === "running"; i++) {
      dies(d, d.worker(0), 20);
      if (d.state.restartPending.length) d.send({ type: "timer", key: "restart:0" }, 1_000);
      d.readyAll();
    }
    expect(d.state.exitCode).toBe(4);
    expect(d.logs("error").at(-1)).toBe(
      "worker 0 (pid 103) died: exit code 1, 4 early deaths in a row; giving up (--max-restarts 3)",
    );
  });
});

describe("upgrading the supervisor (USR2, `supervisor upgrade`)", () => {
  const upgrading = (overrides: Partial<Config> = {}) => {
    const d = new Driver(overrides).boot();
    d.send({ type: "upgrade" });
    d.send({ type: "successor-started", pid: 500 });
    return d;
  };

  test("the successor's workers are ready: hand over, drain every worker, exit 0", () => {
    const d = upgrading();
    const fx = d.send({ type: "successor-ready", pid: 500, version: "0.2.0" }, 400);
    expect(of(fx, "hand-over")).toEqual([{ type: "hand-over", pid: 500 }]);
    expect(of(fx, "kill").map((e) => e.signal)).toEqual(["SIGTERM", "SIGTERM"]);
    expect(d.state.phase).toBe("stopping");
    expect(d.state.lastUpgrade).toEqual({
      seq: 1,
      ok: true,
      message: "upgrade finished: supervisor pid 500 (version 0.2.0) took over in 400 ms",
    });
    d.send({ type: "exit", id: 1, code: 0, signal: null });
    const last = d.send({ type: "exit", id: 2, code: 0, signal: null });
    expect(of(last, "exit")).toEqual([{ type: "exit", code: 0 }]);
  });

  test.each([
    [
      "it exits before it is ready",
      { type: "successor-exit", pid: 500, how: "exit code 3" } as Event,
      /\(pid 500\) exited with exit code 3 before its workers were ready/,
    ],
    [
      "it cannot be started",
      { type: "successor-exit", how: "/x/supervisor is missing" } as Event,
      /could not be started: \/x\/supervisor is missing/,
    ],
  ])("a failed upgrade (%s) keeps every worker serving, and a new one may be asked", (_, ev, why) => {
    const d = upgrading();
    const fx = d.send(ev);
    expect(of(fx, "kill")).toEqual([]);
    expect(d.state.phase).toBe("running");
    expect(d.state.upgrade).toBeUndefined();
    expect(d.state.lastUpgrade?.ok).toBe(false);
    expect(d.state.lastUpgrade?.message).toMatch(why);
    expect(d.logs("error").at(-1)).toMatch(/; the old supervisor keeps serving$/);
    expect(of(d.send({ type: "upgrade" }), "start-successor")).toHaveLength(1);
  });

  test("not ready in time: it is stopped, and its exit fails the upgrade", () => {
    const d = upgrading({ bootTimeoutMs: 5_000 });
    const deadline = of(d.effects, "set-timer").find((e) => e.key === "upgrade:0");
    expect(deadline?.ms).toBe(16_000);
    expect(of(d.send({ type: "timer", key: "upgrade:0" }, 16_000), "stop-successor")).toEqual([
      { type: "stop-successor", pid: 500 },
    ]);
    expect(d.state.phase).toBe("running");
    // A late "ready" from it is not a hand-over.
    expect(of(d.send({ type: "successor-ready", pid: 500, version: "0.2.0" }), "hand-over")).toEqual([]);
    d.send({ type: "successor-exit", pid: 500, how: "signal SIGTERM" });
    expect(d.state.lastUpgrade?.message).toMatch(/was not ready within 16\.0 s; stopped it/);
  });

  test.each([
    [
      "a second upgrade while one runs",
      {},
      (d: Driver) => d.send({ type: "upgrade" }),
      /already under way \(new supervisor pid 500\)/,
    ],
    ["as PID 1", { pid1: true }, () => {}, /as PID 1 \(a container\)/],
    [
      "under systemd without NOTIFY_SOCKET",
      { systemdWithoutNotify: true },
      () => {},
      /add NotifyAccess=main/,
    ],
  ])("refused visibly: %s", (_, overrides, before, why) => {
    const d = new Driver(overrides as Partial<Config>).boot();
    d.send({ type: "upgrade" });
    if (d.state.upgrade) d.send({ type: "successor-started", pid: 500 });
    before(d);
    const fx = d.send({ type: "signal", signal: "SIGUSR2" });
    expect(of(fx, "start-successor")).toEqual([]);
    expect(d.logs("warn").at(-1)).toMatch(why);
    expect(d.logs("warn").at(-1)).toMatch(/^upgrade refused: /);
  });

  test("a hand-over from a pid that is not our successor is ignored", () => {
    const d = upgrading();
    expect(of(d.send({ type: "successor-ready", pid: 999, version: "0.2.0" }), "hand-over")).toEqual([]);
    expect(d.state.phase).toBe("running");
  });

  test("a stop while the successor starts stops it too; its exit then is no failure", () => {
    const d = upgrading();
    expect(of(d.send({ type: "signal", signal: "SIGTERM" }), "stop-successor")).toEqual([
      { type: "stop-successor", pid: 500 },
    ]);
    d.send({ type: "successor-exit", pid: 500, how: "exit code 0" });
    expect(d.logs("warn").at(-1)).toBe(
      "upgrade abandoned: the supervisor is stopping, and so did the new one (pid 500, exit code 0)",
    );
    expect(d.logs("error")).toEqual([]);
  });
});
