// What passes between the supervisor and a worker. Type-only: the worker's source is evaluated on its
// own (`bun -e`), so it may import nothing at run time but Bun's built-ins.

/** JSON in the SUPERVISOR_WORKER_CONFIG variable; the worker removes it before importing the app. */
export interface WorkerConfig {
  /** Absolute path of the app's module. */
  entry: string;
  port: number;
  host: string;
  slot: number;
  /** The supervisor's pid: when getppid() stops returning it, the supervisor is gone. */
  parentPid: number;
  gracefulTimeoutMs: number;
  /** How often to send a heartbeat (with the request count); decided by the supervisor's core. */
  heartbeatMs: number;
  /** Ask to be replaced after about this many requests; 0 = never. */
  maxRequests: number;
  /** Up to this many extra requests, drawn per worker, so workers do not all recycle at once. */
  maxRequestsJitter: number;
  /** --tls-cert / --tls-key file paths: given, they win over an app's own `tls` export. */
  tls?: { cert: string; key: string };
  /** --access-log: one line per request on stdout (method, path, status, duration, worker). */
  accessLog: boolean;
  /** --log-format: access-log lines as text or JSON lines. */
  logFormat: "pretty" | "json";
}

export const WORKER_CONFIG_ENV = "SUPERVISOR_WORKER_CONFIG";
/** The worker's own code (this folder's main.ts as JavaScript), run by a short `bun -e` stub. */
export const WORKER_SOURCE_ENV = "SUPERVISOR_WORKER_JS";

/** Worker -> supervisor, over Bun's IPC channel. */
export type WorkerMessage =
  /** Listening; `startupMs`: the time the app's module took to import (its top-level start-up work). */
  | { type: "ready"; startupMs?: number }
  /** Sent once, at the first request: a worker that served is never counted as a crash loop. */
  | { type: "serving" }
  | { type: "boot-error"; message: string }
  | { type: "heartbeat"; requests: number }
  | { type: "retire"; reason: "max-requests" };
