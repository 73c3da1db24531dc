// The value parsers of the option table: one raw value (a string from a flag or a variable, or any
// JSON value from a config file: citty has no number type) to a checked option value, or one usage
// error line naming its source ("-w/--workers", "WEB_CONCURRENCY", "supervisor.config.ts: workers").

import { usageError } from "../core/exit-codes.ts";
import { MAX_WORKERS } from "../core/lifecycle.ts";
import { consistsOf, DIGITS, hasSpace, isDecimal, isDigits, LETTERS } from "../core/text.ts";

/** Bun.serve's largest idleTimeout, in seconds. */
export const MAX_IDLE_TIMEOUT_S = 255;

/** "512M", "1.5G", "800K", "1048576": binary units as PM2's max_memory_restart; 0 = no limit. */
export function toBytes(raw: unknown, source: string): number {
  // <number>[spaces][K|M|G][B|iB], any case
  let rest = String(raw).trim();
  const upper = rest.toUpperCase();
  rest = rest.slice(0, rest.length - (upper.endsWith("IB") ? 2 : upper.endsWith("B") ? 1 : 0));
  const unit = UNITS[rest.slice(-1).toUpperCase()];
  if (unit !== undefined) rest = rest.slice(0, -1);
  const number = rest.trimEnd();
  if (!isDecimal(number)) throw usageError(`${source} must be a size such as 512M, 1G or 800K, got '${raw}'`);
  return Math.round(Number(number) * (unit ?? 1));
}

const UNITS: Record<string, number> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 };

function wholeNumber(raw: unknown): number {
  const s = String(raw).trim();
  return isDigits(s) ? Number(s) : Number.NaN;
}

export function toWorkers(raw: unknown, source: string): number | "auto" {
  if (String(raw).trim() === "auto") return "auto";
  const n = wholeNumber(raw);
  if (!(n >= 1 && n <= MAX_WORKERS)) {
    throw usageError(`${source} must be a whole number from 1 to ${MAX_WORKERS} or auto, got '${raw}'`);
  }
  return n;
}

export function toPort(raw: unknown, source: string): number {
  const n = wholeNumber(raw);
  // Port 0 would give every worker a different random port: reusePort needs one fixed port.
  if (!(n >= 1 && n <= 65535))
    throw usageError(`${source} must be a port number from 1 to 65535, got '${raw}'`);
  return n;
}

export function toHost(raw: unknown, source: string): string {
  const host = String(raw).trim();
  if (!host || hasSpace(host) || host.includes("/"))
    throw usageError(`${source} must be a host name or IP address, got '${raw}'`);
  return host;
}

export function seconds(min: number) {
  return (raw: unknown, source: string): number => {
    const s = String(raw).trim();
    const n = isDecimal(s) ? Number(s) : Number.NaN;
    if (!(n >= min) || n > 86_400) {
      const least = min === 0 ? "0 or more" : "more than 0";
      throw usageError(`${source} must be a number of seconds, ${least} (at most 86400), got '${raw}'`);
    }
    return Math.round(n * 1000);
  };
}

export function toKeepAlive(raw: unknown, source: string): number {
  const ms = seconds(0)(raw, source);
  if (ms > MAX_IDLE_TIMEOUT_S * 1000) {
    throw usageError(`${source} must be at most ${MAX_IDLE_TIMEOUT_S} seconds (Bun's limit), got '${raw}'`);
  }
  return ms;
}

export function whole(raw: unknown, source: string): number {
  const n = wholeNumber(raw);
  if (!Number.isSafeInteger(n)) throw usageError(`${source} must be a whole number, 0 or more, got '${raw}'`);
  return n;
}

export function text(raw: unknown, source: string): string {
  if (typeof raw !== "string" || raw.trim() === "") throw usageError(`${source} must not be empty`);
  return raw;
}

export function toBoolean(raw: unknown, source: string): boolean {
  if (typeof raw === "boolean") return raw;
  const s = String(raw).trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(s)) return true;
  if (["0", "false", "no", "off"].includes(s)) return false;
  throw usageError(`${source} must be true or false, got '${raw}'`);
}

export function oneOf<T extends string>(choices: readonly T[]) {
  return (raw: unknown, source: string): T => {
    const s = String(raw).trim() as T;
    if (!choices.includes(s))
      throw usageError(`${source} must be one of ${choices.join(", ")}, got '${raw}'`);
    return s;
  };
}

/** KEY=VALUE pairs: repeated flags arrive as an array, a config file may give an object. */
export function toEnv(raw: unknown, source: string): Record<string, string> {
  if (raw && typeof raw === "object" && !Array.isArray(raw)) {
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [checkEnvName(k, source), String(v)]));
  }
  const pairs = Array.isArray(raw) ? raw : String(raw).split("\n");
  const env: Record<string, string> = {};
  for (const pair of pairs.map(String)) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw usageError(`${source} must be KEY=VALUE, got '${pair}'`);
    env[checkEnvName(pair.slice(0, eq), source)] = pair.slice(eq + 1);
  }
  return env;
}

function checkEnvName(name: string, source: string): string {
  if (!consistsOf(name.charAt(0), `${LETTERS}_`) || !consistsOf(name, `${LETTERS}${DIGITS}_`))
    throw usageError(`${source}: '${name}' is not a variable name`);
  return name;
}

/** --watch (true: the app's directory, marked as "."), --watch=a,b, or a list in a config file. */
export function toWatch(raw: unknown, source: string): string[] {
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
