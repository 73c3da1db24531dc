// The shell around the decision core: signal listeners, worker exits, IPC messages and timers only
// enqueue events; one serial loop feeds them to `decide` and performs the effects it returns
// (Gunicorn's arbiter: handlers queue, the loop decides). Nothing here polls.

import { decide, initialState } from "./core/lifecycle.ts";
import type { Effect, Event, Signal, State } from "./core/types.ts";
import { createWorkerHost, type WorkerHost } from "./host.ts";
import type { Logger } from "./log.ts";
import type { RunOptions } from "./options.ts";

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

/** How often a worker proves its event loop is alive: several beats per --timeout, at most 1 s apart
 * (the beat also carries the request count, and the supervisor reads RSS when it arrives). */
export function heartbeatInterval(timeoutMs: number): number {
  return timeoutMs > 0 ? Math.max(50, Math.min(1_000, Math.floor(timeoutMs / 4))) : 1_000;
}

/** Runs workers until the lifecycle says to exit; resolves with the exit code. */
export function superviseWorkers(options: RunOptions, logger: Logger): Promise<number> {
  const address = `http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${options.port}`;
  let state: State = initialState(
    {
      workers: options.workers,
      bootTimeoutMs: options.bootTimeoutMs,
      gracefulTimeoutMs: options.gracefulTimeoutMs,
      timeoutMs: options.timeoutMs,
      maxMemoryBytes: options.maxMemoryBytes,
      address,
    },
    performance.now(),
  );
  const queue: Event[] = [];
  let busy = false;
  const timers = new Map<string, Timer>();
  let host: WorkerHost;
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
        const decision = decide(state, next, performance.now());
        state = decision.state;
        for (const effect of decision.effects) perform(effect);
      }
    } finally {
      busy = false;
    }
  };

  const perform = (effect: Effect) => {
    switch (effect.type) {
      case "spawn":
        return host.spawn(effect.id, effect.slot);
      case "kill":
        return host.kill(effect.id, effect.signal);
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
        return finish(effect.code);
    }
  };

  const listeners = HANDLED_SIGNALS.map((signal) => {
    const listener = () => emit({ type: "signal", signal });
    process.on(signal, listener);
    return [signal, listener] as const;
  });

  host = createWorkerHost(
    {
      entry: options.entry,
      port: options.port,
      host: options.host,
      gracefulTimeoutMs: options.gracefulTimeoutMs,
      heartbeatMs: heartbeatInterval(options.timeoutMs),
      maxRequests: options.maxRequests,
      maxRequestsJitter: options.maxRequestsJitter,
      env: process.env,
    },
    emit,
  );
  emit({ type: "start" });
  return done;
}
