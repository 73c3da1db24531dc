// Every `run` option in one table: its flag, environment variables, config-file key, default and
// parser (src/config/parsers.ts). The table drives citty's flags (src/commands/run.ts), the
// variables and the config file's keys alike; src/config/resolve.ts applies the precedence.

import { MAX_WORKERS } from "../core/lifecycle.ts";
import {
  oneOf,
  seconds,
  text,
  toBoolean,
  toBytes,
  toEnv,
  toHost,
  toKeepAlive,
  toPort,
  toWatch,
  toWorkers,
  whole,
} from "./parsers.ts";

export { MAX_IDLE_TIMEOUT_S } from "./parsers.ts";

export interface RunOptions {
  /** The app's module as given (resolved against --chdir by the caller). */
  entry: string;
  workers: number | "auto";
  port: number;
  host: string;
  gracefulTimeoutMs: number;
  bootTimeoutMs: number;
  /** Hung-worker (heartbeat) timeout; 0 = off. */
  timeoutMs: number;
  /** Connection idle timeout (Bun.serve's idleTimeout); undefined = follow timeoutMs; 0 = none. */
  keepAliveMs: number | undefined;
  /** Largest request body a worker accepts (Bun.serve's maxRequestBodySize); 0 = no limit. */
  maxBodyBytes: number;
  /** Replace a worker after about this many requests; 0 = never. */
  maxRequests: number;
  maxRequestsJitter: number;
  /** Replace a worker whose RSS stays above this; 0 = no limit. */
  maxMemoryBytes: number;
  /** Consecutive early deaths of one worker before giving up (exit 4); 0 = never give up. */
  maxRestarts: number;
  /** After TERM, keep serving this long (readiness already failing) before draining. */
  shutdownDelayMs: number;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  preStart: string | undefined;
  pidfile: string | undefined;
  user: string | undefined;
  group: string | undefined;
  chdir: string | undefined;
  /** Extra environment for the workers and --pre-start (--env KEY=VALUE, repeatable). */
  env: Record<string, string>;
  /** Do an init's work (reap orphans); on by default when running as PID 1. */
  init: boolean;
  control: string | undefined;
  admin: string | undefined;
  logFormat: "pretty" | "json";
  logLevel: "debug" | "info" | "warn" | "error";
  accessLog: boolean;
  /** --watch: directories to watch for a rolling reload on change; empty = off. */
  watch: string[];
}

export type OptionKey = Exclude<keyof RunOptions, "entry">;

/** Where a value came from: "--workers", "WEB_CONCURRENCY", "supervisor.config.ts: workers", "default". */
export type Sources = Record<keyof RunOptions, string>;

export interface OptionSpec<K extends OptionKey = OptionKey> {
  key: K;
  /** Long flag without dashes (kebab-case); the config key is `key` (camelCase). */
  flag: string;
  alias?: string;
  /** Variables read, most specific first (SUPERVISOR_<FLAG> is always first). */
  conventions?: string[];
  kind: "string" | "boolean";
  valueHint?: string;
  description: string;
  fallback: RunOptions[K];
  parse: (raw: unknown, source: string) => RunOptions[K];
}

/** The scale bound is the lifecycle core's; the option parser and `supervisor scale` check it early. */
export { MAX_WORKERS };
/** Bun.serve's own default maxRequestBodySize. */
export const DEFAULT_MAX_BODY_BYTES = 128 * 2 ** 20;
export const DEFAULT_PORT = 3000;
export const DEFAULT_HOST = "0.0.0.0";

/** The option table: the CLI's flags, the environment's variables and the config file's keys. */
export const OPTIONS: OptionSpec[] = [
  opt(
    "workers",
    "workers",
    "Worker processes, or auto: the CPUs this process may use (cgroup quota, affinity)",
    "auto",
    toWorkers,
    { alias: "w", valueHint: "n|auto", conventions: ["WEB_CONCURRENCY"] },
  ),
  opt("port", "port", "Port every worker listens on", DEFAULT_PORT, toPort, {
    alias: "p",
    valueHint: "port",
    conventions: ["PORT"],
  }),
  opt("host", "host", "Address to listen on (:: for IPv6)", DEFAULT_HOST, toHost, {
    alias: "H",
    valueHint: "host",
    conventions: ["HOST"],
  }),
  opt(
    "gracefulTimeoutMs",
    "graceful-timeout",
    "Seconds a stopping worker gets to finish its requests before it is killed",
    30_000,
    seconds(0),
    { valueHint: "seconds" },
  ),
  opt(
    "bootTimeoutMs",
    "boot-timeout",
    "Seconds a starting worker gets to begin listening",
    30_000,
    seconds(0.001),
    { valueHint: "seconds" },
  ),
  opt(
    "timeoutMs",
    "timeout",
    "Kill and replace a worker whose event loop is silent this many seconds; 0 = off",
    30_000,
    seconds(0),
    { valueHint: "seconds" },
  ),
  opt(
    "keepAliveMs",
    "keep-alive",
    "Seconds a connection may stay idle (between requests, or waiting for a slow handler's answer) before it is closed; default: --timeout's, at most 255; 0 = never",
    undefined,
    toKeepAlive,
    { valueHint: "seconds" },
  ),
  opt(
    "maxBodyBytes",
    "max-body-size",
    "Largest request body a worker accepts (larger ones get 413), e.g. 10M; 0 = no limit",
    DEFAULT_MAX_BODY_BYTES,
    toBytes,
    { valueHint: "size" },
  ),
  opt(
    "maxRequests",
    "max-requests",
    "Replace a worker (rolling) after about n requests; 0 = never",
    0,
    whole,
    { valueHint: "n" },
  ),
  opt(
    "maxRequestsJitter",
    "max-requests-jitter",
    "Add 0..n to --max-requests per worker so they do not recycle at once",
    0,
    whole,
    { valueHint: "n" },
  ),
  opt(
    "maxMemoryBytes",
    "max-memory",
    "Replace a worker whose RSS stays above this, e.g. 512M or 1G; 0 = no limit",
    0,
    toBytes,
    { valueHint: "size" },
  ),
  opt(
    "maxRestarts",
    "max-restarts",
    "Give up (exit 4) after this many early deaths in a row of one worker; 0 = never",
    16,
    whole,
    { valueHint: "n" },
  ),
  opt(
    "shutdownDelayMs",
    "shutdown-delay",
    "After TERM, keep serving this many seconds before draining (Kubernetes endpoint removal)",
    0,
    seconds(0),
    { valueHint: "seconds" },
  ),
  opt("tlsCert", "tls-cert", "TLS certificate (PEM) for HTTPS; needs --tls-key", undefined, text, {
    valueHint: "file",
  }),
  opt("tlsKey", "tls-key", "TLS private key (PEM) for HTTPS; needs --tls-cert", undefined, text, {
    valueHint: "file",
  }),
  opt(
    "preStart",
    "pre-start",
    "Shell command run once before any worker starts (migrations); its failure stops everything",
    undefined,
    text,
    { valueHint: "command" },
  ),
  opt(
    "pidfile",
    "pidfile",
    "Write the supervisor's pid here (atomically; removed on exit)",
    undefined,
    text,
    { valueHint: "file" },
  ),
  opt("user", "user", "Run workers as this user (name or uid) when started as root", undefined, text, {
    valueHint: "user",
  }),
  opt("group", "group", "Run workers with this group (name or gid) when started as root", undefined, text, {
    valueHint: "group",
  }),
  opt("chdir", "chdir", "Change to this directory before loading the app", undefined, text, {
    valueHint: "dir",
  }),
  opt("env", "env", "Set KEY=VALUE in the workers' environment (repeatable)", {}, toEnv, {
    valueHint: "KEY=VALUE",
  }),
  opt(
    "init",
    "init",
    "Reap orphaned processes like an init (automatic when running as PID 1)",
    false,
    toBoolean,
    { kind: "boolean" },
  ),
  opt(
    "control",
    "control",
    "Control socket path for status/reload/scale/stop (default: per user and port)",
    undefined,
    text,
    { valueHint: "path" },
  ),
  opt(
    "admin",
    "admin",
    "Serve /metrics, /healthz and /readyz on this [host:]port (default host 127.0.0.1)",
    undefined,
    text,
    { valueHint: "host:port" },
  ),
  opt(
    "logFormat",
    "log-format",
    "pretty (colour on a terminal) or json (one object per line)",
    "pretty",
    oneOf(["pretty", "json"] as const),
    { valueHint: "pretty|json" },
  ),
  opt(
    "logLevel",
    "log-level",
    "debug, info, warn or error",
    "info",
    oneOf(["debug", "info", "warn", "error"] as const),
    { valueHint: "level" },
  ),
  opt("accessLog", "access-log", "Log one line per request from the workers", false, toBoolean, {
    kind: "boolean",
  }),
  opt(
    "watch",
    "watch",
    "Rolling reload when a file under the app's directory changes; --watch=dir1,dir2 for others",
    [],
    toWatch,
    { kind: "boolean" },
  ),
];

/** Keys a config file may hold beyond the options: lifecycle hooks (see src/config/file.ts). */
export const CONFIG_ONLY_KEYS = ["onReady", "onWorkerExit"];

/** The config file's key: the long flag in camelCase ("graceful-timeout" → "gracefulTimeout"). */
export const configKey = (spec: OptionSpec) =>
  spec.flag
    .split("-")
    .map((word, i) => (i === 0 ? word : `${word.charAt(0).toUpperCase()}${word.slice(1)}`))
    .join("");

export const envName = (spec: OptionSpec) => `SUPERVISOR_${spec.flag.toUpperCase().replaceAll("-", "_")}`;

// --- internal ---

function opt<K extends OptionKey>(
  key: K,
  flag: string,
  description: string,
  fallback: RunOptions[K],
  parse: (raw: unknown, source: string) => RunOptions[K],
  extra: Partial<Pick<OptionSpec<K>, "alias" | "conventions" | "kind" | "valueHint">> = {},
): OptionSpec<K> {
  return { key, flag, description, fallback, parse, kind: "string", ...extra };
}
