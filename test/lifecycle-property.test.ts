// The decision core against random event sequences: seeded (reproducible), thousands of them, no
// processes. A tiny model of the shell performs the effects (timers, spawns, kills) and feeds back
// what real processes would do, at random; after every event the invariants are checked, and every
// sequence ends with TERM, which must end in exit.
//
// Reproduce a failure: the message names its seed; PROPERTY_SEED=<seed> PROPERTY_RUNS=1 runs only it.
import { expect, test } from "bun:test";
import { activeWorkers, decide, initialState, readyWorkers } from "../src/core/lifecycle.ts";
import { hungAfterMs } from "../src/core/timings.ts";
import type { Config, Effect, Event, Signal, State } from "../src/core/types.ts";

const RUNS = Number(process.env.PROPERTY_RUNS ?? 3_000);
const FIRST_SEED = Number(process.env.PROPERTY_SEED ?? 1);
const EVENTS_PER_RUN = 60;

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
  return { next, int, pick, chance: (p: number) => next() < p };
}
type Random = ReturnType<typeof random>;

/** Paths of the core the sequences must reach (checked over the whole run). */
const PATHS = {
  "spawn-failed": /could not start a worker process/,
  retire: /will be replaced \(max-requests/,
  scale: /scaling from \d+ to \d+ workers/,
  stop: /shutting down \(stop requested\)/,
  "max-memory": /will be replaced \(RSS \d+ MiB above --max-memory/,
  "crash-loop give-up": /giving up \(--max-restarts/,
  "shutdown-delay": /\(--shutdown-delay\), then draining/,
  "reload while booting": /reload ignored: the supervisor is booting/,
  "reload during a reload": /reload asked during a reload/,
  "reload finished": /reload finished/,
  "failed replacement": /could not replace|reload failed/,
  "boot failure": /worker failed to boot/,
  "hung worker": /sent no heartbeat/,
  "kill after grace": /after TERM; killing it/,
  "upgrade handed over": /upgrade: pid \d+ \(version [^)]+\) has its workers ready; handing over/,
  "upgrade failed": /upgrade failed: /,
  "upgrade refused while one runs": /upgrade refused: an upgrade is already under way/,
} as const;

class Run {
  state: State;
  now = 0;
  readonly rnd: Random;
  readonly trail: string[] = [];
  readonly eventTypes = new Set<string>();
  readonly logs: string[] = [];
  /** Pending timers, as the shell holds them. */
  readonly timers = new Map<string, number>();
  /** Workers whose process was signalled TERM or KILL: they will exit. */
  readonly signalled = new Map<number, string>();
  readonly queue: Event[] = [];
  exited: number | undefined;
  /** The new supervisor of an upgrade, as the shell's model sees it. */
  successor: { pid: number; stopAsked: boolean; handedOver: boolean } | undefined;
  private nextPid = 100;

  constructor(seed: number) {
    this.rnd = random(seed);
    const r = this.rnd;
    const config: Config = {
      workers: 1 + r.int(4),
      bootTimeoutMs: r.pick([500, 30_000]),
      gracefulTimeoutMs: r.pick([0, 1_000, 30_000]),
      timeoutMs: r.pick([0, 0, 2_000, 30_000]),
      maxMemoryBytes: r.pick([0, 0, 100 * 2 ** 20]),
      maxRestarts: r.pick([0, 2, 16]),
      shutdownDelayMs: r.pick([0, 0, 5_000]),
      address: "http://127.0.0.1:3000",
    };
    this.state = initialState(config, 0);
  }

  /** Feed one event, then whatever the model of the shell and the processes answers at once. */
  send(event: Event): void {
    this.queue.push(event);
    for (let next = this.queue.shift(); next; next = this.queue.shift()) this.step(next);
    this.checkHungWatch();
  }

  /** Once the shell has answered: with --timeout on, a check is due no later than the first watched
   * worker could be past it, so a hung worker is always killed, and on time. */
  private checkHungWatch(): void {
    const { state } = this;
    if (this.exited !== undefined || state.config.timeoutMs <= 0 || state.phase === "stopping") return;
    const watched = readyWorkers(state).filter((w) => w.killedFor === undefined);
    if (watched.length === 0) return;
    const deadline = Math.min(
      ...watched.map((w) => (w.beatAt as number) + hungAfterMs(state.config.timeoutMs, w.heartbeatMs)),
    );
    const due = this.timers.get("heartbeat-sample");
    expect(due).toBeDefined();
    // (This model lets time jump past due timers, as a busy loop would: then the check is due now.)
    expect(due as number).toBeLessThanOrEqual(Math.max(this.now, Math.ceil(deadline)));
  }

  private step(event: Event): void {
    this.trail.push(JSON.stringify(event));
    this.eventTypes.add(event.type);
    const before = this.state;
    const { state, effects } = decide(before, event, this.now);
    this.state = state;
    for (const effect of effects) this.perform(effect);
    this.check(effects);
    // A reload answered "finished" covers its request: no active worker is older than it.
    const answer = state.lastReload;
    if (answer?.ok && answer !== before.lastReload && answer.seq !== before.lastReload?.seq)
      for (const w of activeWorkers(state)) expect(w.generation).toBeGreaterThanOrEqual(answer.seq);
  }

  private perform(effect: Effect): void {
    switch (effect.type) {
      case "spawn":
        expect(this.exited).toBeUndefined(); // no spawn after exit
        // Like the host: spawned (rarely, the spawn itself fails), answered in the same loop turn.
        if (this.rnd.chance(0.03))
          this.queue.push({ type: "spawn-failed", id: effect.id, message: "EAGAIN" });
        else this.queue.push({ type: "spawned", id: effect.id, pid: this.nextPid++ });
        return;
      case "kill":
        if (effect.signal === "SIGTERM" || effect.signal === "SIGKILL")
          this.signalled.set(effect.id, effect.signal);
        return;
      case "set-timer":
        this.timers.set(effect.key, this.now + effect.ms);
        return;
      case "clear-timer":
        this.timers.delete(effect.key);
        return;
      case "read-heartbeats":
        // Like the host: the beat files are read at once; some moved, at some time since the last read.
        this.queue.push({
          type: "heartbeats",
          beats: effect.ids
            .filter(() => this.rnd.chance(0.6))
            .map((id) => ({ id, requests: this.rnd.int(5), at: this.now - this.rnd.int(3_000) })),
        });
        return;
      case "sample-memory":
        this.queue.push({
          type: "memory",
          samples: effect.workers.map((w) => ({
            id: w.id,
            rssBytes: this.rnd.chance(0.5) ? 200 * 2 ** 20 : 50 * 2 ** 20,
          })),
        });
        return;
      case "log":
        this.logs.push(effect.message);
        return;
      case "hook":
        return;
      case "start-successor":
        // One upgrade at a time: never a second new supervisor while one lives.
        expect(this.successor).toBeUndefined();
        if (this.rnd.chance(0.1)) this.queue.push({ type: "successor-exit", how: "/x is missing" });
        else {
          this.successor = { pid: this.nextPid++, stopAsked: false, handedOver: false };
          this.queue.push({ type: "successor-started", pid: this.successor.pid });
        }
        return;
      case "stop-successor":
        expect(effect.pid).toBe(this.successor?.pid as number);
        if (this.successor) this.successor.stopAsked = true;
        return;
      case "hand-over":
        expect(effect.pid).toBe(this.successor?.pid as number);
        if (this.successor) this.successor.handedOver = true;
        return;
      case "exit":
        expect(this.exited).toBeUndefined(); // exit once
        expect(this.state.workers).toEqual([]); // exit only when no worker remains
        // A new supervisor that did not take over is never left behind; one that did: exit 0.
        if (this.successor && !this.successor.handedOver) expect(this.successor.stopAsked).toBe(true);
        if (this.successor?.handedOver) expect(effect.code).toBe(0);
        this.exited = effect.code;
        this.timers.clear(); // the shell drops every timer at exit
        return;
    }
  }

  private check(effects: Effect[]): void {
    const { state } = this;
    if (this.exited !== undefined) expect(effects.filter((e) => e.type === "spawn")).toEqual([]);
    // No timer for a worker that is gone.
    const ids = new Set(state.workers.map((w) => w.id));
    for (const key of this.timers.keys()) {
      const [kind, n] = key.split(":");
      if (kind === "boot" || kind === "kill" || kind === "retire") expect(ids.has(Number(n))).toBe(true);
    }
    // At most 2 active workers per slot (one serving, one replacing it).
    const perSlot = new Map<number, number>();
    for (const w of activeWorkers(state)) perSlot.set(w.slot, (perSlot.get(w.slot) ?? 0) + 1);
    for (const count of perSlot.values()) expect(count).toBeLessThanOrEqual(2);
    // Killed workers are workers the core knows.
    for (const e of effects) if (e.type === "kill") expect(ids.has(e.id)).toBe(true);
  }

  /** One random thing that can happen to a supervisor. */
  randomEvent(): Event {
    const { rnd, state } = this;
    this.now += rnd.pick([0, 5, 50, 400, 1_500, 6_000]);
    const worker = state.workers.length > 0 ? rnd.pick(state.workers) : undefined;
    const roll = rnd.next();
    if (worker && roll < 0.2) return { type: "ready", id: worker.id, startupMs: rnd.int(1_000) };
    if (worker && roll < 0.25) return { type: "serving", id: worker.id };
    if (worker && roll < 0.3) return { type: "boot-error", id: worker.id, message: "Error: boom" };
    if (worker && roll < 0.37) return { type: "heartbeat", id: worker.id, requests: rnd.int(3) };
    if (roll < 0.4) return { type: "sample-heartbeats" }; // a status request
    if (worker && roll < 0.5) {
      const signal = this.signalled.get(worker.id) ?? rnd.pick([null, null, "SIGKILL", "SIGSEGV"]);
      return { type: "exit", id: worker.id, code: signal ? null : rnd.pick([0, 1, 3]), signal };
    }
    if (worker && roll < 0.55) return { type: "retire", id: worker.id, reason: "max-requests" };
    if (this.timers.size > 0 && roll < 0.7) {
      const key = rnd.pick([...this.timers.keys()]);
      this.timers.delete(key);
      return { type: "timer", key };
    }
    if (roll < 0.8) {
      const signal: Signal = rnd.pick(["SIGHUP", "SIGHUP", "SIGTTIN", "SIGTTOU", "SIGUSR1"]);
      return { type: "signal", signal };
    }
    if (roll < 0.85) return { type: "scale", workers: rnd.int(6) };
    if (roll < 0.9)
      return {
        type: "configure",
        config: {
          timeoutMs: rnd.pick([0, 2_000]),
          maxMemoryBytes: rnd.pick([0, 100 * 2 ** 20]),
          shutdownDelayMs: rnd.pick([0, 5_000]),
          maxRestarts: rnd.pick([0, 2, 16]),
          gracefulTimeoutMs: rnd.pick([0, 1_000]),
        },
      };
    if (roll < 0.905) return { type: "stop" };
    if (roll < 0.91) return { type: "signal", signal: "SIGUSR2" };
    if (roll < 0.92) return { type: "signal", signal: rnd.pick(["SIGINT", "SIGQUIT", "SIGTERM"] as const) };
    const successor = this.successor;
    if (successor && roll < 0.95) {
      if (rnd.chance(0.5) && !successor.handedOver) {
        this.successor = undefined; // it exits (crashed, failed to boot, or stopped as asked)
        return {
          type: "successor-exit",
          pid: successor.pid,
          how: successor.stopAsked ? "signal SIGTERM" : "exit code 3",
        };
      }
      return { type: "successor-ready", pid: successor.pid, version: "0.2.0" };
    }
    return { type: "heartbeat", id: worker?.id ?? 0, requests: 0 };
  }

  /** TERM, then let time pass: timers fire, signalled workers exit. It must end in exit. */
  terminate(): void {
    if (this.exited === undefined) this.send({ type: "signal", signal: "SIGTERM" });
    for (let i = 0; i < 500 && this.exited === undefined; i++) {
      const gone = [...this.signalled.keys()].find((id) => this.state.workers.some((w) => w.id === id));
      if (gone !== undefined) {
        const signal = this.signalled.get(gone) === "SIGKILL" ? "SIGKILL" : null;
        this.send({ type: "exit", id: gone, code: signal ? null : 0, signal });
        continue;
      }
      const [key, due] = [...this.timers.entries()].sort((a, b) => a[1] - b[1])[0] ?? [];
      if (key === undefined || due === undefined) break;
      this.now = Math.max(this.now, due);
      this.timers.delete(key);
      this.send({ type: "timer", key });
    }
    expect(this.exited).toBeDefined(); // TERM always ends in exit
  }
}

test(`${RUNS} random event sequences keep the lifecycle's invariants`, () => {
  const reached = new Set<string>();
  const eventTypes = new Set<string>();
  for (let seed = FIRST_SEED; seed < FIRST_SEED + RUNS; seed++) {
    const run = new Run(seed);
    try {
      run.send({ type: "start" });
      for (let i = 0; i < EVENTS_PER_RUN && run.exited === undefined; i++) run.send(run.randomEvent());
      run.terminate();
    } catch (error) {
      const trail = run.trail.slice(-25).join("\n  ");
      throw new Error(`seed ${seed} broke an invariant: ${error}\nlast events:\n  ${trail}`);
    }
    for (const type of run.eventTypes) eventTypes.add(type);
    for (const [path, pattern] of Object.entries(PATHS))
      if (run.logs.some((line) => pattern.test(line))) reached.add(path);
  }
  if (RUNS >= 1_000) {
    expect([...reached].sort()).toEqual(Object.keys(PATHS).sort());
    // Every kind of event the shell can send was sent.
    const all = ["start", "spawned", "spawn-failed", "ready", "serving", "boot-error", "heartbeat", "memory"];
    all.push("heartbeats", "sample-heartbeats");
    all.push("exit", "timer", "signal", "retire", "scale", "stop", "configure");
    all.push("successor-started", "successor-exit", "successor-ready");
    expect([...eventTypes].sort()).toEqual(all.sort());
  }
}, 60_000);
