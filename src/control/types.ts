// What a running supervisor tells about itself and what it can be asked to do: the contract between
// the lifecycle shell (src/runtime/loop.ts) and its control socket, admin endpoint and metrics.

import type { RestartReason, WorkerPhase } from "../core/types.ts";

export type { RestartReason };

export interface WorkerSnapshot {
  slot: number;
  pid: number | null;
  state: WorkerPhase;
  /** Milliseconds since the worker process was started. */
  uptimeMs: number;
  /** How many times this slot's worker has been replaced after dying (crash, hung, killed). */
  restarts: number;
  /** Resident set size in bytes, read from /proc; null where unknown. */
  rssBytes: number | null;
  /** Requests this worker has served (from its heartbeat; 0 when not counted). */
  requests: number;
  /** With --admin: this worker's requests as it records them (live, no heartbeat delay). */
  http?: HttpStats;
}

/** Request counts and durations (Prometheus histogram buckets) of one worker or of all. */
export interface HttpStats {
  inFlight: number;
  count: number;
  sumSeconds: number;
  /** One count per bucket of `upperBounds`, NOT cumulative; the last is above the largest bound (+Inf). */
  buckets: number[];
}

export interface HttpTotals extends HttpStats {
  /** Bucket upper bounds in seconds. */
  upperBounds: readonly number[];
  /** Requests by method and status code; workers that are gone included. */
  requests: { method: string; code: string; count: number }[];
}

export interface Snapshot {
  pid: number;
  version: string;
  /** "booting" until every worker is first ready, "running", then "stopping". */
  phase: "booting" | "running" | "stopping";
  uptimeMs: number;
  /** e.g. "http://0.0.0.0:3000" */
  address: string;
  workersConfigured: number;
  workersReady: number;
  workers: WorkerSnapshot[];
  restarts: Record<RestartReason, number>;
  /** With --admin: the app's requests over all workers, those gone included. */
  http?: HttpTotals;
}

export interface ActionResult {
  ok: boolean;
  /** One line for the person who asked, e.g. "reload finished: 4 workers replaced in 412 ms". */
  message: string;
}

/** What the control socket and signals can ask of the supervisor. Each promise settles when done. */
export interface ControlActions {
  snapshot(): Snapshot;
  reload(): Promise<ActionResult>;
  /** An absolute count, or a relative change such as +1 / -1. */
  scale(workers: number, relative: boolean): Promise<ActionResult>;
  stop(): Promise<ActionResult>;
  /** Replace this supervisor by a new one started from the binary now at its path (as USR2). */
  upgrade(): Promise<ActionResult>;
  /** Send USR1 or USR2 to every worker. */
  signal(name: "SIGUSR1" | "SIGUSR2"): Promise<ActionResult>;
  /** From the new supervisor of an upgrade: its workers are ready; answered once it may take over. */
  successorReady(pid: number, version: string): Promise<ActionResult>;
}
