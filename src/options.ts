// Turns the `run` command's raw flags and the environment into validated options. Pure: no I/O.
// citty has no number type, so every number arrives as a string and is checked here, once.

import { usageError } from "./exit-codes.ts";

export interface RunOptions {
  /** The app's module as given; resolved and checked by the caller. */
  entry: string;
  workers: number;
  port: number;
  host: string;
  gracefulTimeoutMs: number;
  bootTimeoutMs: number;
  /** Hung-worker (heartbeat) timeout; 0 = off. */
  timeoutMs: number;
  /** Replace a worker after about this many requests; 0 = never. */
  maxRequests: number;
  maxRequestsJitter: number;
  /** Replace a worker whose RSS stays above this; 0 = no limit. */
  maxMemoryBytes: number;
}

export interface RawRunArgs {
  entry?: string;
  workers?: string;
  port?: string;
  host?: string;
  "graceful-timeout"?: string;
  "boot-timeout"?: string;
  timeout?: string;
  "max-requests"?: string;
  "max-requests-jitter"?: string;
  "max-memory"?: string;
}

export const DEFAULT_PORT = 3000;
export const DEFAULT_HOST = "0.0.0.0";
export const DEFAULT_GRACEFUL_TIMEOUT_S = 30;
export const DEFAULT_BOOT_TIMEOUT_S = 30;
export const DEFAULT_TIMEOUT_S = 30;
/** More workers than this is a typo, not a deployment. */
export const MAX_WORKERS = 1024;

export function toOptions(args: RawRunArgs, env: Record<string, string | undefined>): RunOptions {
  if (!args.entry)
    throw usageError("missing the app to run: supervisor run <entry> (e.g. supervisor run app.ts -w 4)");
  return {
    entry: args.entry,
    workers: pick(args.workers, "-w/--workers", env.WEB_CONCURRENCY, "WEB_CONCURRENCY", 1, toWorkerCount),
    port: pick(args.port, "-p/--port", env.PORT, "PORT", DEFAULT_PORT, toPort),
    host: pick(args.host, "-H/--host", env.HOST, "HOST", DEFAULT_HOST, toHost),
    gracefulTimeoutMs: seconds(args["graceful-timeout"], "--graceful-timeout", DEFAULT_GRACEFUL_TIMEOUT_S, 0),
    bootTimeoutMs: seconds(args["boot-timeout"], "--boot-timeout", DEFAULT_BOOT_TIMEOUT_S, 0.001),
    timeoutMs: seconds(args.timeout, "--timeout", DEFAULT_TIMEOUT_S, 0),
    maxRequests: count(args["max-requests"], "--max-requests"),
    maxRequestsJitter: count(args["max-requests-jitter"], "--max-requests-jitter"),
    maxMemoryBytes: args["max-memory"] === undefined ? 0 : toBytes(args["max-memory"], "--max-memory"),
  };
}

// --- internal ---

/** The flag if given, else the environment variable if set, else the default; named in any error. */
function pick<T>(
  flag: string | undefined,
  flagName: string,
  envValue: string | undefined,
  envName: string,
  fallback: T,
  parse: (raw: string, source: string) => T,
): T {
  if (flag !== undefined) return parse(flag, flagName);
  if (envValue !== undefined && envValue !== "") return parse(envValue, envName);
  return fallback;
}

function toWorkerCount(raw: string, source: string): number {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!(n >= 1 && n <= MAX_WORKERS)) {
    throw usageError(`${source} must be a whole number from 1 to ${MAX_WORKERS}, got '${raw}'`);
  }
  return n;
}

function toPort(raw: string, source: string): number {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  // Port 0 would give every worker a different random port: reusePort needs one fixed port.
  if (!(n >= 1 && n <= 65535))
    throw usageError(`${source} must be a port number from 1 to 65535, got '${raw}'`);
  return n;
}

function toHost(raw: string, source: string): string {
  const host = raw.trim();
  if (!host || /\s|\//.test(host))
    throw usageError(`${source} must be a host name or IP address, got '${raw}'`);
  return host;
}

function seconds(raw: string | undefined, source: string, fallback: number, min: number): number {
  if (raw === undefined) return fallback * 1000;
  const n = /^\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!(n >= min) || n > 86_400) {
    const least = min === 0 ? "0 or more" : "more than 0";
    throw usageError(`${source} must be a number of seconds, ${least} (at most 86400), got '${raw}'`);
  }
  return Math.round(n * 1000);
}

function count(raw: string | undefined, source: string): number {
  if (raw === undefined) return 0;
  const n = /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw usageError(`${source} must be a whole number, 0 or more, got '${raw}'`);
  return n;
}

const UNITS: Record<string, number> = { "": 1, B: 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 };

/** "512M", "1.5G", "800K", "1048576": binary units as PM2's max_memory_restart; 0 = no limit. */
export function toBytes(raw: string, source: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?$/i.exec(raw.trim());
  const unit = UNITS[(m?.[2] ?? "").toUpperCase()];
  if (!m || unit === undefined) {
    throw usageError(`${source} must be a size such as 512M, 1G or 800K, got '${raw}'`);
  }
  return Math.round(Number(m[1]) * unit);
}
