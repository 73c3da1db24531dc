// The lifecycle's vocabulary: plain data only, so the decision core can be tested without processes.

/** A worker's life as the supervisor sees it. */
export type WorkerPhase = "starting" | "ready" | "draining";

/** Why a worker was replaced, in the order they are shown: the label of
 * supervisor_worker_restarts_total, the keys of a status's `restarts`, the status table's order.
 * "memory" is --max-memory's. */
export const RESTART_REASONS = ["crash", "timeout", "memory", "max-requests", "reload"] as const;
export type RestartReason = (typeof RESTART_REASONS)[number];

/** Why a healthy worker is being replaced by a fresh one (rolling, never fewer ready than configured),
 * named after what asked for it (the log says "stopped (max-memory)"). */
export type RetireReason = "reload" | "max-requests" | "max-memory";

/** The restart reason a retirement is counted under: the same word, but --max-memory's counter is
 * "memory" (the label dashboards already scrape). The one place the two words differ. */
export const RESTART_REASON_OF: Record<RetireReason, RestartReason> = {
  reload: "reload",
  "max-requests": "max-requests",
  "max-memory": "memory",
};

export interface WorkerRecord {
  /** Unique and increasing; never reused, unlike `slot`. */
  id: number;
  /** Stable 0..N-1, given to the replacement of a worker that died (SUPERVISOR_WORKER_ID). */
  slot: number;
  pid?: number;
  phase: WorkerPhase;
  startedAt: number;
  readyAt?: number;
  /** When the worker took its first request (its "serving" message, or a heartbeat counting one): a
   * worker that served is never an early death, however soon it dies. */
  servedAt?: number;
  /** The reload generation it was started in (State.reloadSeq then): older than the newest reload
   * means it runs code older than the latest `reload` asked for. */
  generation: number;
  /** How often this worker was told to send heartbeats (decided at its spawn, from --timeout then). */
  heartbeatMs: number;
  /** Set while a replacement for this worker is wanted or starting. */
  retiring?: RetireReason;
  /** Set on a fresh worker that will take over from `replacementOf` once ready. */
  replacementOf?: number;
  /** The app's own error, sent on the worker's channel before it exits with BOOT_ERROR. */
  bootError?: string;
  /** What the supervisor asked of a worker it stopped on purpose (for the exit log line). */
  stopReason?: string;
  /** Requests served, from the worker's heartbeat. */
  requests: number;
  /** The last proof that its event loop runs (ready, or a beat), on the supervisor's clock: --timeout
   * counts from here. */
  beatAt?: number;
  /** Resident memory from /proc at the last memory sample. */
  rssBytes?: number;
  /** Consecutive memory samples with RSS above --max-memory. */
  overMemory: number;
  /** A retirement the worker asked for (--max-requests) that is not under way yet: retried after a
   * failed replacement, once its backoff (`replaceNotBefore`) is over. */
  retireAsked?: RetireReason;
  /** Failed replacements in a row; the next try waits `restartBackoff` after the last one. */
  replaceFailures?: number;
  replaceNotBefore?: number;
  /** Set when the supervisor SIGKILLs a hung worker, so its exit is counted as a timeout. */
  killedFor?: "timeout";
  /** Why the supervisor itself sent SIGKILL, so the exit line does not guess "out of memory". */
  killReason?: string;
}

export type SupervisorPhase = "booting" | "running" | "stopping";

export interface Config {
  workers: number;
  bootTimeoutMs: number;
  gracefulTimeoutMs: number;
  /** Heartbeat timeout; 0 turns hung-worker detection off. */
  timeoutMs: number;
  /** RSS above which a worker is replaced (rolling); 0 = no limit. */
  maxMemoryBytes: number;
  /** Early deaths in a row of one slot before giving up with exit 4; 0 = never. */
  maxRestarts: number;
  /** After TERM/INT, keep serving this long before draining. */
  shutdownDelayMs: number;
  /** Address the workers listen on, for log lines only. */
  address: string;
  /** Running as PID 1 (a container): an upgrade is refused, no new process can replace PID 1. */
  pid1?: boolean;
  /** A systemd service that cannot be told its main pid changes (no NOTIFY_SOCKET): an upgrade is
   * refused, systemd would take the old supervisor's exit for the service's end. */
  systemdWithoutNotify?: boolean;
}

/** A supervisor upgrade under way (USR2, `supervisor upgrade`): a new supervisor process started
 * from the binary now at our path, which takes over once all its workers are ready. */
export interface Upgrade {
  /** Counts upgrades accepted; the answer to `supervisor upgrade` is the one with its number. */
  seq: number;
  startedAt: number;
  /** The new supervisor's pid, once it is started. */
  pid?: number;
  /** It did not get ready in time and was told to stop: its exit ends the upgrade as failed. */
  timedOut?: boolean;
  /** "stop-successor" was asked (once). */
  stopAsked?: boolean;
  /** It is ready and took over: we drain every worker and exit 0. */
  handedOver?: boolean;
}

export interface State {
  config: Config;
  phase: SupervisorPhase;
  /** Wanted worker count; TTIN/TTOU move it. */
  target: number;
  nextId: number;
  workers: WorkerRecord[];
  /** slot -> consecutive deaths soon after start (drives restartBackoff). */
  failures: Record<number, number>;
  /** Slots waiting for their backoff timer before a new worker is started. */
  restartPending: number[];
  startedAt: number;
  /** Set when a rolling reload is under way: it goes on until no active worker is older than
   * `reloadSeq` (a reload asked during one extends it: coalesced). */
  reload?: { startedAt: number; replaced: number };
  /** Counts reloads asked for, and is the generation of workers started now; `lastReload` tells how the
   * latest finished and which request it covers (for `supervisor reload`). */
  reloadSeq: number;
  /** Set while --shutdown-delay runs: the reason the drain will give when it starts. */
  pendingDrain?: string;
  lastReload?: { seq: number; ok: boolean; message: string };
  upgrade?: Upgrade;
  upgradeSeq: number;
  lastUpgrade?: { seq: number; ok: boolean; message: string };
  exitCode: number;
  bootErrorShown: boolean;
  /** Replacements so far, by reason and by slot (for status and metrics). */
  restarts: Record<RestartReason, number>;
  slotRestarts: Record<number, number>;
}

export type Signal =
  | "SIGTERM"
  | "SIGINT"
  | "SIGQUIT"
  | "SIGHUP"
  | "SIGTTIN"
  | "SIGTTOU"
  | "SIGUSR1"
  | "SIGUSR2";

export type Event =
  | { type: "start" }
  | { type: "spawned"; id: number; pid: number }
  | { type: "spawn-failed"; id: number; message: string }
  | { type: "ready"; id: number; startupMs?: number }
  | { type: "serving"; id: number }
  | { type: "boot-error"; id: number; message: string }
  /** A heartbeat message (a worker without a beat file): its loop runs now. */
  | { type: "heartbeat"; id: number; requests: number }
  /** The beat files a "read-heartbeats" effect named: the workers whose beat moved, each with when it
   * beat on the supervisor's clock. Hung workers are judged on it. */
  | { type: "heartbeats"; beats: { id: number; requests: number; at: number }[] }
  /** Read the beat files now (a status or metrics request wants current counts). */
  | { type: "sample-heartbeats" }
  /** RSS read from /proc for the workers a "sample-memory" effect named (undefined: process gone). */
  | { type: "memory"; samples: { id: number; rssBytes: number | undefined }[] }
  | { type: "exit"; id: number; code: number | null; signal: string | null }
  | { type: "timer"; key: string }
  | { type: "signal"; signal: Signal }
  | { type: "retire"; id: number; reason: RetireReason; requests?: number }
  | { type: "scale"; workers: number }
  | { type: "stop" }
  | { type: "configure"; config: Partial<Omit<Config, "address">> }
  /** USR2 or `supervisor upgrade`. */
  | { type: "upgrade" }
  /** `supervisor signal USR1|USR2`: to every worker. */
  | { type: "forward"; signal: "SIGUSR1" | "SIGUSR2" }
  | { type: "successor-started"; pid: number }
  /** The new supervisor could not be started (`pid` undefined) or exited before it took over. */
  | { type: "successor-exit"; pid?: number; how: string }
  /** The new supervisor says all its workers are ready (over our control socket). */
  | { type: "successor-ready"; pid: number; version: string };

export type LogLevel = "info" | "warn" | "error";

/** What a config-file hook is called with; the shell calls it after the loop's turn. */
export type HookCall =
  | { type: "hook"; name: "onReady" }
  | {
      type: "hook";
      name: "onWorkerExit";
      exit: { slot: number; pid: number | null; code: number | null; signal: string | null };
    };

export type Effect =
  | { type: "spawn"; id: number; slot: number; heartbeatMs: number }
  | { type: "kill"; id: number; signal: "SIGTERM" | "SIGKILL" | "SIGUSR1" | "SIGUSR2" }
  | { type: "log"; level: LogLevel; message: string }
  | { type: "set-timer"; key: string; ms: number }
  | { type: "clear-timer"; key: string }
  /** Read these workers' heartbeat files now and answer with a "heartbeats" event. */
  | { type: "read-heartbeats"; ids: number[] }
  /** Read these workers' RSS now and answer with a "memory" event. */
  | { type: "sample-memory"; workers: { id: number; pid: number }[] }
  | HookCall
  /** Start the new supervisor (answered with "successor-started" or "successor-exit"). */
  | { type: "start-successor" }
  /** Stop a new supervisor that did not take over (TERM, then SIGKILL). */
  | { type: "stop-successor"; pid: number }
  /** Give the successor what only one supervisor may hold: the admin port, the port claim. */
  | { type: "hand-over"; pid: number }
  | { type: "exit"; code: number };

export interface Decision {
  state: State;
  effects: Effect[];
}
