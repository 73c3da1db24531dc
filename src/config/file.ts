// The config file: `supervisor.config.ts` (or .js, .json) in the working directory, or --config <file>.
// Its default export is a plain object whose keys are the long option names in camelCase, plus
// `entry` and optional lifecycle hooks: a plain object works without any package (users of the
// standalone binary have none to import); `defineConfig` only adds types for editor completion.

import { existsSync } from "node:fs";
import { basename, resolve } from "node:path";
import type { Snapshot } from "../control/types.ts";
import { usageError } from "../core/exit-codes.ts";
import type { RunOptions } from "./options.ts";

export interface WorkerExit {
  slot: number;
  pid: number | null;
  code: number | null;
  signal: string | null;
}

export interface Hooks {
  /** Called in the supervisor once every worker is first ready. */
  onReady?: (status: Snapshot) => void | Promise<void>;
  /** Called in the supervisor when a worker dies unexpectedly (before it is replaced). */
  onWorkerExit?: (exit: WorkerExit) => void | Promise<void>;
}

type ConfigValue<K extends keyof RunOptions> = RunOptions[K] extends number ? number | string : RunOptions[K];

/** What a config file may hold. Durations are in seconds, as on the command line. */
export type SupervisorConfig = Partial<{
  entry: string;
  workers: number | "auto";
  port: number;
  host: string;
  gracefulTimeout: number;
  bootTimeout: number;
  timeout: number;
  maxRequests: number;
  maxRequestsJitter: number;
  maxMemory: string | number;
  maxRestarts: number;
  shutdownDelay: number;
  tlsCert: string;
  tlsKey: string;
  preStart: string;
  pidfile: string;
  user: string;
  group: string;
  chdir: string;
  env: Record<string, string>;
  init: boolean;
  control: string;
  admin: string;
  logFormat: ConfigValue<"logFormat">;
  logLevel: ConfigValue<"logLevel">;
  accessLog: boolean;
  watch: boolean | string[];
}> &
  Hooks;

/** Types for editor completion; returns its argument unchanged. */
export const defineConfig = (config: SupervisorConfig): SupervisorConfig => config;

export const CONFIG_NAMES = ["supervisor.config.ts", "supervisor.config.js", "supervisor.config.json"];

export interface LoadedConfig {
  /** Shown in messages: "supervisor.config.ts". */
  file: string;
  path: string;
  values: Record<string, unknown>;
  hooks: Hooks;
}

/** The explicit --config file, else the first default name present in `dir`, else none. */
export function findConfig(explicit: string | undefined, dir: string): string | undefined {
  if (explicit !== undefined) {
    const path = resolve(explicit);
    if (!existsSync(path)) throw usageError(`--config: file not found: ${explicit}`);
    return path;
  }
  return CONFIG_NAMES.map((name) => resolve(dir, name)).find((path) => existsSync(path));
}

export async function loadConfig(path: string): Promise<LoadedConfig> {
  const file = basename(path);
  let raw: unknown;
  try {
    if (path.endsWith(".json")) {
      raw = JSON.parse(await Bun.file(path).text());
    } else {
      // A fresh copy each time, so HUP re-reads an edited file.
      const mod = (await import(`${path}?t=${Date.now()}`)) as { default?: unknown };
      raw = mod.default;
    }
  } catch (error) {
    const why = error instanceof Error ? error.message.split("\n")[0] : String(error);
    throw usageError(`${file}: cannot be loaded: ${why}`);
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    throw usageError(
      `${file}: the default export must be an object of options, e.g. { entry: "app.ts", workers: 4 }`,
    );
  }
  const { onReady, onWorkerExit, ...rest } = raw as Record<string, unknown>;
  for (const [name, hook] of Object.entries({ onReady, onWorkerExit })) {
    if (hook !== undefined && typeof hook !== "function")
      throw usageError(`${file}: ${name} must be a function`);
  }
  return {
    file,
    path,
    values: rest,
    hooks: { onReady, onWorkerExit } as Hooks,
  };
}
