// What passes between the supervisor and a worker: types, constants and the beat file's one-line
// format, nothing with side effects (the supervisor imports this file too).

/** JSON in the SUPERVISOR_WORKER_CONFIG variable; the worker removes it before importing the app. */
export interface WorkerConfig {
  /** Absolute path of the app's module. */
  entry: string;
  port: number;
  host: string;
  slot: number;
  /** Started with the channel on CHANNEL_FD (a worker started by hand has none). */
  channel: boolean;
  gracefulTimeoutMs: number;
  /** --boot-timeout: how long a module that starts its server after its import is waited for. */
  bootTimeoutMs: number;
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
  /** --keep-alive: Bun.serve's `idleTimeout` in seconds (0 = none). `explicit` when the user set it,
   * so it wins over the app's own `idleTimeout`; otherwise the app's wins. */
  idleTimeout: { seconds: number; explicit: boolean };
  /** --max-body-size: Bun.serve's `maxRequestBodySize`; `explicit` as for idleTimeout. */
  maxBody: { bytes: number; explicit: boolean };
  /** Serve in Bun's development mode (error pages with the source): only with --watch, unless the app
   * sets `development` itself. */
  development: boolean;
  /** With --admin: this worker's request-metrics file (worker/metrics-layout.ts), made by the supervisor. */
  metricsFile?: string;
  /** Where the heartbeat goes (a beat file: formatBeat); without it, a "heartbeat" message. */
  beatFile?: string;
}

/** A worker's beat file holds one line, "<beats> <requests> <at>\n", rewritten at each beat and read
 * by the supervisor when a worker could first be past --timeout. `at` is the worker's
 * `performance.now()` at the beat (ms, monotonic, from the worker's own start); the supervisor puts it
 * on its own clock with the offset it learned from the "ready" message's `at` (src/runtime/host.ts),
 * so no wall clock, which may step, is compared across processes. */
export const formatBeat = (beats: number, requests: number, at: number) =>
  `${beats} ${requests} ${Math.round(at)}\n`;

export interface Beat {
  beats: number;
  requests: number;
  at: number;
}

/** A beat file's line as formatBeat wrote it; undefined for anything else (an empty file before the
 * first beat, a line caught mid-rewrite: without its newline). */
export function parseBeat(line: string): Beat | undefined {
  if (!line.endsWith("\n")) return undefined;
  const [beats, requests, at, extra] = line.slice(0, -1).split(" ").map(Number);
  return Number.isFinite(beats) && Number.isFinite(requests) && Number.isFinite(at) && extra === undefined
    ? { beats: beats as number, requests: requests as number, at: at as number }
    : undefined;
}

export const WORKER_CONFIG_ENV = "SUPERVISOR_WORKER_CONFIG";
/** The worker's own code (this folder bundled into one script), run by a short `bun -e` stub. */
export const WORKER_SOURCE_ENV = "SUPERVISOR_WORKER_JS";

/** The worker's end of the channel to the supervisor: a socket pair made at spawn (Bun.spawn's 4th
 * stdio entry, "pipe"). Worker -> supervisor: WorkerMessage, one JSON line each. Supervisor ->
 * worker: nothing; the supervisor's end closing (end-of-file) means it is gone. */
export const CHANNEL_FD = 3;

/** Worker -> supervisor, one JSON line each on CHANNEL_FD. */
export type WorkerMessage =
  /** Listening; `startupMs` is the time the app's own start-up work took (its import, top-level await
   * included); `at` is the worker's performance.now() as it sends this (its beats' clock). */
  | { type: "ready"; startupMs: number; at: number }
  | { type: "boot-error"; message: string }
  /** Sent once, at the first request: from then on a death is not a boot-time crash loop. */
  | { type: "serving" }
  /** Only when the worker has no beatFile (no shared directory could be made). */
  | { type: "heartbeat"; requests: number }
  | { type: "retire"; reason: "max-requests"; requests: number };
