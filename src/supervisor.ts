// The shell around the decision core: signal listeners, worker exits, IPC messages, timers and control
// requests only enqueue events; one serial loop feeds them to `decide` and performs the effects it
// returns (Gunicorn's arbiter: handlers queue, the loop decides). Nothing here polls.

import pkg from "../package.json" with { type: "json" };
import type { Hooks } from "./config.ts";
import type { ActionResult, ControlActions, Snapshot } from "./control/types.ts";
import { decide, initialState, readyWorkers } from "./core/lifecycle.ts";
import { KILL_MARGIN_MS } from "./core/timings.ts";
import type { Config, Effect, Event, Signal, State } from "./core/types.ts";
import { createWorkerHost, type HostOptions, type WorkerHost } from "./host.ts";
import type { Logger } from "./log.ts";
import { MAX_WORKERS } from "./options.ts";
import { residentBytes } from "./proc.ts";

/** Signals the supervisor takes over; Gunicorn's meanings (README's signal table). */
export const HANDLED_SIGNALS: Signal[] = [
  "SIGTERM",
  "SIGINT",
  "SIGQUIT",
  "SIGHUP",
  "SIGTTIN",
  "SIGTTOU",
  "SIGUSR1",
  "SIGUSR2",
];

/** How often a worker proves its event loop is alive: four beats per --timeout, at least 50 ms and at
 * most 5 s apart (30 s → 5 s). The beat also carries the request count, and the supervisor reads RSS
 * when it arrives, so --max-memory notices a leak within ~15 s; an idle supervisor wakes up only
 * N/5 times a second. */
export const MAX_HEARTBEAT_MS = 5_000;
export function heartbeatInterval(timeoutMs: number): number {
  return timeoutMs > 0
    ? Math.max(50, Math.min(MAX_HEARTBEAT_MS, Math.floor(timeoutMs / 4)))
    : MAX_HEARTBEAT_MS;
}

/** The config file's hooks, plus what runs before every reload (HUP, `supervisor reload`, --watch):
 * re-reading the config file. */
export interface SupervisionHooks extends Hooks {
  beforeReload?: () => Promise<void>;
  /** Called synchronously after each event with the state before and after it (systemd notify). */
  onTransition?: (before: State, after: State) => void;
}

export interface Supervision {
  /** Resolves with the exit code once every worker is gone. */
  done: Promise<number>;
  actions: ControlActions & { isShuttingDown(): boolean };
  /** For settings that change at run time (a re-read config file's worker count). */
  emit: (event: Event) => void;
}

/** Runs workers until the lifecycle says to exit. */
export function superviseWorkers(
  config: Config,
  host: HostOptions,
  logger: Logger,
  hooks: SupervisionHooks = {},
): Supervision {
  const startedAt = performance.now();
  let state: State = initialState(config, startedAt);
  const queue: Event[] = [];
  let busy = false;
  const timers = new Map<string, Timer>();
  /** Control requests waiting for the state they asked for (checked after every event: no polling). */
  let waiters: { settled: (s: State) => ActionResult | undefined; resolve: (r: ActionResult) => void }[] = [];
  let workers: WorkerHost;
  let finish: (code: number) => void;
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });

  const emit = (event: Event) => {
    queue.push(event);
    if (busy) return; // the running loop will get to it (onExit may fire inside Bun.spawn)
    busy = true;
    try {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const before = state;
        const decision = decide(state, next, performance.now());
        state = decision.state;
        for (const effect of decision.effects) performSafely(effect);
        settleWaiters();
        runHooks(before, next);
      }
    } finally {
      busy = false;
    }
  };

  const settleWaiters = () => {
    if (waiters.length === 0) return;
    waiters = waiters.filter((w) => {
      const result = w.settled(state);
      if (result) w.resolve(result);
      return !result;
    });
  };

  /** User hooks from the config file run after the loop's turn, never inside it; their failures are
   * logged, never fatal. */
  const runHooks = (before: State, event: Event) => {
    hooks.onTransition?.(before, state);
    const call = (name: string, fn: () => unknown) => {
      queueMicrotask(() => {
        void (async () => fn())().catch((error) => logger.error(`${name} hook failed: ${error}`));
      });
    };
    if (hooks.onReady && before.phase === "booting" && state.phase === "running") {
      const status = snapshotOf(state, performance.now());
      call("onReady", () => hooks.onReady?.(status));
    }
    if (hooks.onWorkerExit && event.type === "exit") {
      const w = before.workers.find((x) => x.id === event.id);
      if (w && w.phase !== "draining" && before.phase !== "stopping") {
        const exit = { slot: w.slot, pid: w.pid ?? null, code: event.code, signal: event.signal };
        call("onWorkerExit", () => hooks.onWorkerExit?.(exit));
      }
    }
  };

  /** Reloads first let `beforeReload` refresh settings (the config file); then the core takes over. */
  const reloadEvent = async (): Promise<Event> => {
    try {
      await hooks.beforeReload?.();
    } catch (error) {
      logger.error(
        `${error instanceof Error ? error.message : String(error)}; reloading with the previous settings`,
      );
    }
    return { type: "signal", signal: "SIGHUP" };
  };

  /** Enqueue an event and resolve when `settled` says the state shows it done; a request that cannot
   * settle (a crash-looping worker never ready) is answered when a worker could have booted and drained. */
  const request = (event: Event, settled: (s: State) => ActionResult | undefined) =>
    new Promise<ActionResult>((resolve) => {
      const limitMs = state.config.bootTimeoutMs + state.config.gracefulTimeoutMs + KILL_MARGIN_MS;
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w.resolve !== done);
        done({ ok: false, message: `not done after ${limitMs / 1000} s; see supervisor status` });
      }, limitMs);
      const done = (result: ActionResult) => {
        clearTimeout(timer);
        resolve(result);
      };
      waiters.push({ settled, resolve: done });
      emit(event);
    });

  /** The state is already committed: one failing effect must not skip the spawns and timers after it. */
  const performSafely = (effect: Effect) => {
    try {
      perform(effect);
    } catch (error) {
      try {
        process.stderr.write(`supervisor: ${effect.type} failed: ${error}\n`);
      } catch {
        // stderr is gone too
      }
    }
  };

  const perform = (effect: Effect) => {
    switch (effect.type) {
      case "spawn":
        return workers.spawn(effect.id, effect.slot);
      case "kill":
        return workers.kill(effect.id, effect.signal);
      case "log":
        return logger[effect.level](effect.message);
      case "set-timer": {
        clearTimeout(timers.get(effect.key));
        const timer = setTimeout(() => {
          timers.delete(effect.key);
          emit({ type: "timer", key: effect.key });
        }, effect.ms);
        timers.set(effect.key, timer);
        return;
      }
      case "clear-timer":
        clearTimeout(timers.get(effect.key));
        timers.delete(effect.key);
        return;
      case "exit":
        for (const timer of timers.values()) clearTimeout(timer);
        timers.clear();
        for (const [signal, listener] of listeners) process.off(signal, listener);
        for (const w of waiters)
          w.resolve({ ok: effect.code === 0, message: `stopped (exit code ${effect.code})` });
        waiters = [];
        return finish(effect.code);
    }
  };

  const listeners = HANDLED_SIGNALS.map((signal) => {
    const listener =
      signal === "SIGHUP" && hooks.beforeReload
        ? () => void reloadEvent().then(emit)
        : () => emit({ type: "signal", signal });
    process.on(signal, listener);
    return [signal, listener] as const;
  });

  const actions: Supervision["actions"] = {
    snapshot: () => snapshotOf(state, performance.now()),
    isShuttingDown: () => state.phase === "stopping",
    async reload() {
      const event = await reloadEvent();
      const seq = state.reloadSeq + 1;
      return request(event, (s) => (s.lastReload && s.lastReload.seq >= seq ? s.lastReload : undefined));
    },
    scale(n, relative) {
      const target = relative ? state.target + n : n;
      const refuse = (message: string) => Promise.resolve({ ok: false, message });
      if (state.phase !== "running") return refuse(`cannot scale while the supervisor is ${state.phase}`);
      if (target < 1) return refuse(`cannot scale to ${target}: never below 1 worker`);
      if (target > MAX_WORKERS) return refuse(`cannot scale to ${target}: at most ${MAX_WORKERS} workers`);
      // Done when exactly `target` workers serve and none is still starting or draining.
      return request({ type: "scale", workers: target }, (s) => {
        if (s.phase === "stopping") return { ok: false, message: "the supervisor is stopping" };
        const settled = s.workers.every((w) => w.phase === "ready") && readyWorkers(s).length === target;
        return settled
          ? { ok: true, message: `${target} worker${target === 1 ? "" : "s"} ready` }
          : undefined;
      });
    },
    stop: () => request({ type: "stop" }, () => undefined),
  };

  workers = createWorkerHost(host, emit);
  emit({ type: "start" });
  return { done, actions, emit };
}

// --- internal ---

function snapshotOf(s: State, now: number): Snapshot {
  return {
    pid: process.pid,
    version: pkg.version,
    phase: s.phase,
    uptimeMs: Math.round(now - s.startedAt),
    address: s.config.address,
    workersConfigured: s.target,
    workersReady: readyWorkers(s).length,
    workers: [...s.workers]
      .sort((a, b) => a.slot - b.slot || a.id - b.id)
      .map((w) => ({
        slot: w.slot,
        pid: w.pid ?? null,
        state: w.phase,
        uptimeMs: Math.round(now - w.startedAt),
        restarts: s.slotRestarts[w.slot] ?? 0,
        rssBytes: residentBytes(w.pid) ?? w.rssBytes ?? null,
        requests: w.requests,
      })),
    restarts: { ...s.restarts },
  };
}
