// Every `run` option in one table: its flag, environment variables, config-file key, default and
// parser. `resolveRunOptions` applies one precedence, flag > environment > config file > default,
// and remembers where each value came from (for --print-config and for error messages). Pure: no I/O.
// citty has no number type, so numbers arrive as strings (from flags and env) or numbers (from a
// config file) and are checked here, once.

import { usageError } from "../core/exit-codes.ts";
import { MAX_WORKERS } from "../core/lifecycle.ts";

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
/** Bun.serve's largest idleTimeout, in seconds. */
export const MAX_IDLE_TIMEOUT_S = 255;
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

export interface Layers {
  /** Parsed flags, keyed by flag name (kebab-case); strings, booleans, or arrays for repeated flags. */
  flags: Record<string, unknown>;
  env: Record<string, string | undefined>;
  /** The config file's default export, and its name for messages. */
  config?: { file: string; values: Record<string, unknown> };
}

/** Apply flag > environment > config file > default to every option; errors name their source. */
export function resolveRunOptions(layers: Layers): { options: RunOptions; sources: Sources } {
  const config = layers.config?.values ?? {};
  const configName = layers.config?.file ?? "config";
  const known = new Set(["entry", ...OPTIONS.map(configKey), ...CONFIG_ONLY_KEYS]);
  for (const key of Object.keys(config)) {
    if (!known.has(key)) throw usageError(`${configName}: unknown key '${key}'${suggest(key, [...known])}`);
  }
  const options: Partial<RunOptions> = {};
  const sources: Partial<Sources> = {};
  const problems: string[] = [];
  for (const spec of OPTIONS) {
    try {
      sources[spec.key] = resolveOne(spec, layers, config, configName, options);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  // One line per problem, from every place at once, so a broken deployment is fixed in one go.
  if (problems.length > 0) throw usageError(problems.join("\n"));
  const entry = layers.flags.entry ?? layers.env.SUPERVISOR_ENTRY ?? config.entry;
  if (entry === undefined || entry === "") {
    throw usageError("missing the app to run: supervisor run <entry> (e.g. supervisor run app.ts -w 4)");
  }
  if (typeof entry !== "string") throw usageError(`${configName}: entry must be a file path`);
  options.entry = entry;
  sources.entry =
    layers.flags.entry !== undefined
      ? "argument"
      : layers.env.SUPERVISOR_ENTRY !== undefined
        ? "SUPERVISOR_ENTRY"
        : `${configName}: entry`;
  // Every key is set: the table's by the loop above (or it threw), the entry just now.
  const result = options as RunOptions;
  checkTogether(result, sources as Sources);
  return { options: result, sources: sources as Sources };
}

/** Keys a config file may hold beyond the options: lifecycle hooks (see src/config/file.ts). */
export const CONFIG_ONLY_KEYS = ["onReady", "onWorkerExit"];

/** The config file's key: the long flag in camelCase ("graceful-timeout" → "gracefulTimeout"). */
export const configKey = (spec: OptionSpec) =>
  spec.flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export const envName = (spec: OptionSpec) => `SUPERVISOR_${spec.flag.toUpperCase().replaceAll("-", "_")}`;

/** "512M", "1.5G", "800K", "1048576": binary units as PM2's max_memory_restart; 0 = no limit. */
export function toBytes(raw: unknown, source: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?$/i.exec(String(raw).trim());
  const unit = UNITS[(m?.[2] ?? "").toUpperCase()];
  if (!m || unit === undefined)
    throw usageError(`${source} must be a size such as 512M, 1G or 800K, got '${raw}'`);
  return Math.round(Number(m[1]) * unit);
}

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

/** One option's value into `options`; returns where it came from. */
function resolveOne<K extends OptionKey>(
  spec: OptionSpec<K>,
  layers: Layers,
  config: Record<string, unknown>,
  configName: string,
  options: Partial<RunOptions>,
): string {
  const [raw, source] = pickLayer(spec, layers, config, configName);
  options[spec.key] = raw === undefined ? spec.fallback : spec.parse(raw, source);
  return raw === undefined ? "default" : source;
}

function pickLayer(
  spec: OptionSpec,
  layers: Layers,
  config: Record<string, unknown>,
  configName: string,
): [unknown, string] {
  const flagValue = layers.flags[spec.flag];
  if (flagValue !== undefined)
    return [flagValue, spec.alias ? `-${spec.alias}/--${spec.flag}` : `--${spec.flag}`];
  for (const name of [envName(spec), ...(spec.conventions ?? [])]) {
    const value = layers.env[name];
    if (value !== undefined && value !== "") return [value, name];
  }
  const key = configKey(spec);
  if (config[key] !== undefined) return [config[key], `${configName}: ${key}`];
  return [undefined, "default"];
}

function checkTogether(o: RunOptions, sources: Sources): void {
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
    const given = o.tlsCert === undefined ? sources.tlsKey : sources.tlsCert;
    throw usageError(`${given} needs its pair: HTTPS takes both --tls-cert and --tls-key`);
  }
  if (o.maxRequestsJitter > 0 && o.maxRequests === 0) {
    throw usageError(`${sources.maxRequestsJitter} needs --max-requests`);
  }
}

const UNITS: Record<string, number> = { "": 1, B: 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 };

function wholeNumber(raw: unknown): number {
  const s = String(raw).trim();
  return /^\d+$/.test(s) ? Number(s) : Number.NaN;
}

function toWorkers(raw: unknown, source: string): number | "auto" {
  if (String(raw).trim() === "auto") return "auto";
  const n = wholeNumber(raw);
  if (!(n >= 1 && n <= MAX_WORKERS)) {
    throw usageError(`${source} must be a whole number from 1 to ${MAX_WORKERS} or auto, got '${raw}'`);
  }
  return n;
}

function toPort(raw: unknown, source: string): number {
  const n = wholeNumber(raw);
  // Port 0 would give every worker a different random port: reusePort needs one fixed port.
  if (!(n >= 1 && n <= 65535))
    throw usageError(`${source} must be a port number from 1 to 65535, got '${raw}'`);
  return n;
}

function toHost(raw: unknown, source: string): string {
  const host = String(raw).trim();
  if (!host || /\s|\//.test(host))
    throw usageError(`${source} must be a host name or IP address, got '${raw}'`);
  return host;
}

function seconds(min: number) {
  return (raw: unknown, source: string): number => {
    const s = String(raw).trim();
    const n = /^\d+(\.\d+)?$/.test(s) ? Number(s) : Number.NaN;
    if (!(n >= min) || n > 86_400) {
      const least = min === 0 ? "0 or more" : "more than 0";
      throw usageError(`${source} must be a number of seconds, ${least} (at most 86400), got '${raw}'`);
    }
    return Math.round(n * 1000);
  };
}

function toKeepAlive(raw: unknown, source: string): number {
  const ms = seconds(0)(raw, source);
  if (ms > MAX_IDLE_TIMEOUT_S * 1000) {
    throw usageError(`${source} must be at most ${MAX_IDLE_TIMEOUT_S} seconds (Bun's limit), got '${raw}'`);
  }
  return ms;
}

function whole(raw: unknown, source: string): number {
  const n = wholeNumber(raw);
  if (!Number.isSafeInteger(n)) throw usageError(`${source} must be a whole number, 0 or more, got '${raw}'`);
  return n;
}

function text(raw: unknown, source: string): string {
  if (typeof raw !== "string" || raw.trim() === "") throw usageError(`${source} must not be empty`);
  return raw;
}

function toBoolean(raw: unknown, source: string): boolean {
  if (typeof raw === "boolean") return raw;
  const s = String(raw).trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(s)) return true;
  if (["0", "false", "no", "off"].includes(s)) return false;
  throw usageError(`${source} must be true or false, got '${raw}'`);
}

function oneOf<T extends string>(choices: readonly T[]) {
  return (raw: unknown, source: string): T => {
    const s = String(raw).trim() as T;
    if (!choices.includes(s))
      throw usageError(`${source} must be one of ${choices.join(", ")}, got '${raw}'`);
    return s;
  };
}

/** KEY=VALUE pairs: repeated flags arrive as an array, a config file may give an object. */
function toEnv(raw: unknown, source: string): Record<string, string> {
  if (raw && typeof raw === "object" && !Array.isArray(raw)) {
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [checkEnvName(k, source), String(v)]));
  }
  const pairs = Array.isArray(raw) ? raw : String(raw).split(/\n/);
  const env: Record<string, string> = {};
  for (const pair of pairs.map(String)) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw usageError(`${source} must be KEY=VALUE, got '${pair}'`);
    env[checkEnvName(pair.slice(0, eq), source)] = pair.slice(eq + 1);
  }
  return env;
}

function checkEnvName(name: string, source: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw usageError(`${source}: '${name}' is not a variable name`);
  return name;
}

/** --watch (true: the app's directory, marked as "."), --watch=a,b, or a list in a config file. */
function toWatch(raw: unknown, source: string): string[] {
  if (raw === true || raw === false) return raw ? ["."] : [];
  if (!Array.isArray(raw)) {
    const word = String(raw).trim().toLowerCase();
    if (["true", "1", "yes", "on"].includes(word)) return ["."];
    if (["false", "0", "no", "off"].includes(word)) return [];
  }
  const dirs = (Array.isArray(raw) ? raw.map(String) : String(raw).split(","))
    .map((d) => d.trim())
    .filter(Boolean);
  if (dirs.length === 0) throw usageError(`${source} must name directories to watch, got '${raw}'`);
  return dirs;
}

function suggest(key: string, known: string[]): string {
  const near = known.find((k) => k.toLowerCase() === key.toLowerCase() || distance(k, key) <= 2);
  return near ? ` (did you mean '${near}'?)` : "";
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] as number;
      row[j] = Math.min(cur + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] as number;
}
