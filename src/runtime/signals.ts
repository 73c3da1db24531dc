// Signals from the first moment, as tini does: `supervisor run` takes over every signal it handles
// before it loads the config file, so none that arrives during start-up (config loading, the port
// probe, --pre-start) kills us with its default action (exit 143 with the pidfile left behind) or is
// lost. Until the loop starts (README's signal table):
// - TERM, INT, QUIT stop the start-up: a running --pre-start gets the signal, no worker starts, the
//   pidfile and control socket are removed, exit 0. While nothing is held yet (the config file is
//   loading), that is an immediate exit 0.
// - HUP has nothing to reload, USR2 nothing to upgrade and USR1 no worker to reach: logged and ignored
//   (a queued USR1 delivered to a worker before its handler exists would kill it).
// - TTIN/TTOU are queued and handed to the loop when it starts.
// The listeners stay until the process exits: a signal during the final clean-up is ignored (we are
// stopping already) rather than cutting the clean-up short.
// The same goes for errors that escape (uncaught exceptions, unhandled rejections, e.g. from a timer
// a config file starts while it loads): from the first moment they reach one handler: one error line
// and exit 1 while the config file loads (src/commands/run.ts), then the failure protocol (start.ts).

import type { Signal } from "../core/types.ts";

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

const STOP_SIGNALS = new Set<Signal>(["SIGTERM", "SIGINT", "SIGQUIT"]);
const QUEUED_SIGNALS = new Set<Signal>(["SIGTTIN", "SIGTTOU"]);

export interface StartupSignals {
  /** The stop signal that arrived before the loop started, if any. */
  readonly stopRequested: Signal | undefined;
  /** Something that must hear about a stop during start-up (the --pre-start command). */
  onStop(fn: (signal: Signal) => void): () => void;
  /** A failure during start-up: whatever listens for a stop (--pre-start) gets TERM now. */
  abort(): void;
  /** From now on a stop signal is a request to the caller, not an immediate exit: resources are held. */
  hold(): void;
  /** Start-up lines go through the logger once it exists (before, they wait). */
  logTo(log: (message: string) => void): void;
  /** The loop takes over: queued signals first, then every later one, until `done`. */
  handOver(deliver: (signal: Signal) => void): { done(): void };
  /** Who handles an error that escaped (start.ts: the failure protocol). */
  onEscaped(handler: (error: unknown) => void): void;
}

let installed: StartupSignals | undefined;

/** Install the listeners (once per process) and return the start-up signal state. */
export function startupSignals(): StartupSignals {
  installed ??= install();
  return installed;
}

// --- internal ---

function install(): StartupSignals {
  let phase: "loading" | "holding" | "loop" | "done" = "loading";
  let stopRequested: Signal | undefined;
  let deliver: ((signal: Signal) => void) | undefined;
  const queued: Signal[] = [];
  const stopListeners = new Set<(signal: Signal) => void>();
  let log: ((message: string) => void) | undefined;
  const pendingLines: string[] = [];
  const say = (message: string) => (log ? log(message) : pendingLines.push(message));

  const onSignal = (signal: Signal) => {
    if (phase === "loop") return deliver?.(signal);
    if (phase === "done") return;
    if (STOP_SIGNALS.has(signal)) {
      // Nothing is held while the config file loads: acting on it is exiting.
      if (phase === "loading") process.exit(0);
      if (stopRequested) return;
      stopRequested = signal;
      say(`${signal} received during start-up: starting no worker`);
      for (const fn of stopListeners) fn(signal);
      return;
    }
    if (QUEUED_SIGNALS.has(signal)) {
      queued.push(signal);
      say(`${signal} received during start-up: applied when the workers start`);
      return;
    }
    const why =
      signal === "SIGHUP"
        ? "nothing to reload yet"
        : signal === "SIGUSR2"
          ? "nothing to upgrade yet"
          : "no worker to forward it to yet";
    say(`${signal} received during start-up: ${why}; ignored`);
  };
  for (const signal of HANDLED_SIGNALS) process.on(signal, () => onSignal(signal));

  let escaped: (error: unknown) => void = (error) => {
    const why = error instanceof Error ? error.message : String(error);
    try {
      console.error(`supervisor: internal error: ${why}`);
    } finally {
      process.exit(1);
    }
  };
  process.on("uncaughtException", (error) => escaped(error));
  process.on("unhandledRejection", (error) => escaped(error));

  return {
    get stopRequested() {
      return stopRequested;
    },
    onStop(fn) {
      stopListeners.add(fn);
      return () => stopListeners.delete(fn);
    },
    onEscaped(handler) {
      escaped = handler;
    },
    abort() {
      for (const fn of stopListeners) fn("SIGTERM");
    },
    hold() {
      if (phase === "loading") phase = "holding";
    },
    logTo(fn) {
      log = fn;
      for (const line of pendingLines.splice(0)) fn(line);
    },
    handOver(fn) {
      deliver = fn;
      phase = "loop";
      for (const signal of queued.splice(0)) fn(signal);
      return {
        done() {
          phase = "done";
          deliver = undefined;
        },
      };
    },
  };
}
