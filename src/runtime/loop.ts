// The shell around the decision core: signal listeners, worker exits, the workers' messages, timers
// and control requests only enqueue events; one serial loop feeds them to `decide` and performs the effects it
// returns (Gunicorn's arbiter: handlers queue, the loop decides). Nothing here polls.
//
// Failure protocol (Gunicorn's Arbiter.run): a throw in the loop (in `decide`, in an effect) or one
// that escapes anywhere else in the process (a timer, a watcher, something a config hook left
// running: start.ts routes uncaught exceptions here) ends the supervisor in a way it decided: one
// error line through the logger, every worker stopped (QUIT, then SIGKILL after KILL_MARGIN_MS), exit
// 1; start.ts then removes the pidfile and the control socket. The hooks themselves (onReady,
// onWorkerExit) only log their own failures: a webhook that fails must not take production down.

import pkg from "../../package.json" with { type: "json" };
import type { Hooks } from "../config/file.ts";
import type { ActionResult, ControlActions, Snapshot } from "../control/types.ts";
import { type ControlRequest, requestDeadlineMs } from "../core/deadlines.ts";
import { ExitCode } from "../core/exit-codes.ts";
import { decide, initialState, readyWorkers, scaleRefusal, upgradeRefusal } from "../core/lifecycle.ts";
import { KILL_MARGIN_MS } from "../core/timings.ts";
import type { Config, Effect, Event, HookCall, Signal, State } from "../core/types.ts";
import { residentBytes, sampleResidentBytes } from "../os/proc.ts";
import { createWorkerHost, type HostOptions, type WorkerHost } from "./host.ts";
import type { Logger } from "./log.ts";
import { HANDLED_SIGNALS } from "./signals.ts";

/** Where the loop's signals come from: start.ts hands over the ones queued during start-up
 * (src/runtime/signals.ts); returns how to stop listening. */
export type SignalSource = (deliver: (signal: Signal) => void) => () => void;

/** Without a source: listen on the process directly. */
const processSignals: SignalSource = (deliver) => {
  const listeners = HANDLED_SIGNALS.map((signal) => [signal, () => deliver(signal)] as const);
  for (const [signal, listener] of listeners) process.on(signal, listener);
  return () => {
    for (const [signal, listener] of listeners) process.off(signal, listener);
  };
};

/** Test-only fault injection, read once: SUPERVISOR_TEST_FAULT=<event type> makes the loop throw when
 * it handles the first event of that type (test/failure.test.ts proves the failure protocol with it). */
const TEST_FAULT_ENV = "SUPERVISOR_TEST_FAULT";

/** The config file's hooks, plus what runs before every reload (HUP, `supervisor reload`, --watch):
 * re-reading the config file. */
export interface SupervisionHooks extends Hooks {
  beforeReload?: () => Promise<void>;
  /** Called synchronously after each event with the state before and after it (systemd notify). */
  onTransition?: (before: State, after: State) => void;
  /** Every worker is ready for the first time (start.ts: a successor then takes over). */
  whenRunning?: () => void;
  /** The process work of an upgrade (src/runtime/upgrade.ts); without it an upgrade fails at once. */
  successor?: SuccessorHost;
}

/** Starts, stops and hands over to the new supervisor of an upgrade; the core decides when. */
export interface SuccessorHost {
  /** Start it; `exited` hears of its exit (how it ended). Throws when it cannot be started. */
  start(exited: (how: string) => void): number;
  stop(pid: number): void;
  /** Release what only one supervisor may hold (admin port, port claim) for it to take. */
  handOver(pid: number): Promise<void>;
}

export interface Supervision {
  /** Resolves with the exit code once every worker is gone. */
  done: Promise<number>;
  actions: ControlActions & { isShuttingDown(): boolean };
  /** For settings that change at run time (a re-read config file's worker count). */
  emit: (event: Event) => void;
  /** The failure protocol, for a throw that escaped elsewhere in the process (start.ts). */
  fail: (error: unknown) => void;
}

/** Runs workers until the lifecycle says to exit. */
export function superviseWorkers(
  config: Config,
  host: HostOptions,
  logger: Logger,
  hooks: SupervisionHooks = {},
  signals: SignalSource = processSignals,
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

  let failed = false;
  let ended = false;
  let faultAt = process.env[TEST_FAULT_ENV];

  const emit = (event: Event) => {
    if (failed) return;
    queue.push(event);
    if (busy) return; // the running loop will get to it (onExit may fire inside Bun.spawn)
    busy = true;
    try {
      for (let next = queue.shift(); next; next = queue.shift()) {
        if (faultAt === next.type) {
          faultAt = undefined;
          throw new Error(`injected fault at a '${next.type}' event (${TEST_FAULT_ENV})`);
        }
        const before = state;
        const decision = decide(state, next, performance.now());
        state = decision.state;
        for (const effect of decision.effects) perform(effect);
        settleWaiters();
        hooks.onTransition?.(before, state);
      }
    } catch (error) {
      fail(error);
    } finally {
      busy = false;
    }
  };

  /** The failure protocol (see the top of this file). The state may be what threw: decide nothing. */
  const fail = (error: unknown) => {
    if (failed) return;
    failed = true;
    queue.length = 0;
    const why = error instanceof Error ? error.message : String(error);
    try {
      logger.error(`internal error: ${why}; stopping every worker and exiting`);
    } catch {
      // the logger itself failed: the exit code still says it
    }
    stopListening();
    for (const timer of timers.values()) clearTimeout(timer);
    timers.clear();
    for (const w of waiters) w.resolve({ ok: false, message: `the supervisor failed: ${why}` });
    waiters = [];
    void workers
      .stopAll(KILL_MARGIN_MS)
      .catch(() => {})
      .then(() => finish(ExitCode.RUNTIME));
  };

  const settleWaiters = () => {
    if (waiters.length === 0) return;
    waiters = waiters.filter((w) => {
      const result = w.settled(state);
      if (result) w.resolve(result);
      return !result;
    });
  };

  /** The core says when a config-file hook runs; it is called after the loop's turn, never inside it,
   * and its failures are logged, never fatal. */
  const callHook = (effect: HookCall) => {
    const { onReady, onWorkerExit } = hooks;
    if (effect.name === "onReady" && hooks.whenRunning) queueMicrotask(hooks.whenRunning);
    let fn: (() => unknown) | undefined;
    if (effect.name === "onReady" && onReady) {
      const status = snapshotOf(state, performance.now()); // as the core left it when boot completed
      fn = () => onReady(status);
    } else if (effect.name === "onWorkerExit" && onWorkerExit) {
      const { exit } = effect;
      fn = () => onWorkerExit(exit);
    }
    if (!fn) return;
    queueMicrotask(() => {
      void (async () => fn())().catch((error) => logger.error(`${effect.name} hook failed: ${error}`));
    });
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
   * settle (a crash-looping worker never ready) is answered "not done" after the core's deadline for
   * the work it sets off (a rolling reload takes one boot per worker). */
  const request = (event: Event, kind: ControlRequest, settled: (s: State) => ActionResult | undefined) =>
    new Promise<ActionResult>((resolve) => {
      const limitMs = requestDeadlineMs(state, kind);
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

  const perform = (effect: Effect) => {
    switch (effect.type) {
      case "spawn":
        return workers.spawn(effect.id, effect.slot, effect.heartbeatMs);
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
      case "read-heartbeats":
        return workers.readHeartbeats(effect.ids);
      case "sample-memory": {
        const samples = effect.workers.map((w) => ({ id: w.id, rssBytes: sampleResidentBytes(w.pid) }));
        return emit({ type: "memory", samples });
      }
      case "hook":
        return callHook(effect);
      case "start-successor":
        return startSuccessor();
      case "stop-successor":
        return hooks.successor?.stop(effect.pid);
      case "hand-over":
        handingOver = hooks.successor?.handOver(effect.pid) ?? Promise.resolve();
        return;
      case "exit": {
        ended = true;
        for (const timer of timers.values()) clearTimeout(timer);
        timers.clear();
        stopListening();
        // After a hand-over every request is answered with how the upgrade went (`supervisor upgrade`
        // answers when the old supervisor is done).
        const upgraded = state.upgrade?.handedOver ? state.lastUpgrade?.message : undefined;
        for (const w of waiters)
          w.resolve({ ok: effect.code === 0, message: upgraded ?? `stopped (exit code ${effect.code})` });
        waiters = [];
        return finish(effect.code);
      }
    }
  };

  let handingOver: Promise<void> = Promise.resolve();
  const startSuccessor = () => {
    let pid: number | undefined;
    try {
      if (!hooks.successor) throw new Error("upgrades are not available here");
      pid = hooks.successor.start((how) => emit({ type: "successor-exit", pid, how }));
    } catch (error) {
      const how = error instanceof Error ? error.message : String(error);
      return queueMicrotask(() => emit({ type: "successor-exit", how }));
    }
    emit({ type: "successor-started", pid });
  };

  let stopListening = () => {};

  const actions: Supervision["actions"] = {
    snapshot: () => {
      emit({ type: "sample-heartbeats" }); // current request counts: the beat files are read rarely
      return snapshotOf(state, performance.now());
    },
    isShuttingDown: () => state.phase === "stopping",
    async reload() {
      const event = await reloadEvent();
      const seq = state.reloadSeq + 1;
      return request(event, { type: "reload" }, (s) =>
        s.lastReload && s.lastReload.seq >= seq ? s.lastReload : undefined,
      );
    },
    scale(n, relative) {
      const target = relative ? state.target + n : n;
      const refusal = scaleRefusal(state, target);
      if (refusal) return Promise.resolve({ ok: false, message: refusal });
      // Done when exactly `target` workers serve and none is still starting or draining.
      return request({ type: "scale", workers: target }, { type: "scale", workers: target }, (s) => {
        if (s.phase === "stopping") return { ok: false, message: "the supervisor is stopping" };
        const settled = s.workers.every((w) => w.phase === "ready") && readyWorkers(s).length === target;
        return settled
          ? { ok: true, message: `${target} worker${target === 1 ? "" : "s"} ready` }
          : undefined;
      });
    },
    stop: () => request({ type: "stop" }, { type: "stop" }, () => undefined),
    upgrade() {
      const refusal = upgradeRefusal(state);
      if (refusal) {
        emit({ type: "upgrade" }); // the core logs the refusal
        return Promise.resolve({ ok: false, message: `upgrade refused: ${refusal}` });
      }
      const seq = state.upgradeSeq + 1;
      // Failures answer here; success when we exit (the "exit" effect), after our workers drained.
      return request({ type: "upgrade" }, { type: "upgrade" }, (s) =>
        s.lastUpgrade?.seq === seq && !s.lastUpgrade.ok ? s.lastUpgrade : undefined,
      );
    },
    signal(name) {
      emit({ type: "forward", signal: name });
      const n = state.workers.length;
      return Promise.resolve({ ok: true, message: `${name} sent to ${n} worker${n === 1 ? "" : "s"}` });
    },
    async successorReady(pid, version) {
      emit({ type: "successor-ready", pid, version });
      if (!(state.upgrade?.handedOver && state.upgrade.pid === pid)) {
        return { ok: false, message: `no upgrade to pid ${pid} is under way` };
      }
      await handingOver;
      return { ok: true, message: `handed over to pid ${pid}; draining the old workers` };
    },
  };

  workers = createWorkerHost(host, emit);
  emit({ type: "start" });
  // After the start: signals queued during start-up (TTIN) act on the workers it asked for.
  if (!failed && !ended) {
    stopListening = signals((signal) =>
      signal === "SIGHUP" && hooks.beforeReload
        ? void reloadEvent().then(emit, fail)
        : emit({ type: "signal", signal }),
    );
  }
  return { done, actions, emit, fail };
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
