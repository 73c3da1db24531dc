// What `supervisor run` does with resolved options, in order: check everything that can be checked
// before a process starts (each failure is one line and an exit code, with nothing left behind), run
// --pre-start, then supervise the workers until they are all gone, and clean up.

import { accessSync, constants, statSync } from "node:fs";
import { resolve } from "node:path";
import { parseAdminSpec } from "./admin.ts";
import { isTrackedChild } from "./children.ts";
import type { LoadedConfig } from "./config.ts";
import { defaultControlPath } from "./control/paths.ts";
import { type ControlServer, startControlServer } from "./control/server.ts";
import type { ControlActions } from "./control/types.ts";
import { noRestarts } from "./core/lifecycle.ts";
import { availableCpus } from "./cpus.ts";
import { ExitCode, SupervisorError, usageError } from "./exit-codes.ts";
import type { HostOptions } from "./host.ts";
import { createLogger, type Logger } from "./log.ts";
import type { RunOptions, Sources } from "./options.ts";
import { removePidfile, writePidfile } from "./pidfile.ts";
import { assertPortFree } from "./port.ts";
import type { Reaper } from "./reaper.ts";
import {
  heartbeatInterval,
  type Supervision,
  type SupervisionHooks,
  superviseWorkers,
} from "./supervisor.ts";
import { resolveIdentity } from "./users.ts";

/** Resolves the options again (flags and environment as given, the config file re-read), for HUP. */
export type Reresolve = () => Promise<{ options: RunOptions; sources: Sources }>;

export async function startRun(
  options: RunOptions,
  sources: Sources,
  config?: LoadedConfig,
  reresolve?: Reresolve,
): Promise<number> {
  const { entry, identity, admin } = checkRunnable(options);
  const { workers, how } = workerCount(options, sources);
  assertPortFree(options.host, options.port);
  const logger = await createLogger({ format: options.logFormat, level: options.logLevel });
  const scheme = options.tlsCert ? "https" : "http";
  const address = `${scheme}://${options.host.includes(":") ? `[${options.host}]` : options.host}:${options.port}`;

  const cleanup: (() => unknown)[] = [];
  const runCleanup = async () => {
    for (const step of cleanup.reverse()) await step();
  };
  try {
    if (options.pidfile) {
      writePidfile(resolve(options.pidfile));
      cleanup.push(() => removePidfile(resolve(options.pidfile as string)));
    }
    let reaper: Reaper | undefined;
    // Optional parts are imported only when asked for: start-up time is part of every launch.
    if (process.pid === 1 || options.init) {
      // PID 1 gets orphans reparented to it and no default signal actions: do an init's work.
      const { startReaper } = await import("./reaper.ts");
      reaper = startReaper({ isTracked: isTrackedChild });
      cleanup.push(() => reaper?.stop());
    }
    // Started before the workers so a clash ends here; answers once the workers exist.
    let supervision: Supervision | undefined;
    const late = lateActions(() => supervision);
    const control = await openControlSocket(options, late, logger);
    if (control) cleanup.push(() => control.stop());
    const adminServer = admin
      ? (await import("./admin.ts")).startAdminServer(options.admin as string, late)
      : undefined;
    if (adminServer) cleanup.push(() => adminServer.stop());

    // Under systemd (Type=notify); before `env` is taken, since it removes NOTIFY_SOCKET from it.
    const notifier = process.env.NOTIFY_SOCKET
      ? (await import("./notify.ts")).systemdNotifier(logger)
      : undefined;
    const env: Record<string, string | undefined> = { ...process.env, ...options.env };
    if (options.preStart) {
      const { runPreStart } = await import("./pre-start.ts");
      const code = await runPreStart(options.preStart, env, logger);
      if (code !== 0) {
        await runCleanup();
        return code;
      }
    }
    if (process.platform !== "linux" && workers > 1) {
      logger.warn(
        `SO_REUSEPORT does not balance connections on ${process.platform}: one worker may get them all`,
      );
    }
    logger.info(
      `starting ${workers} worker${workers === 1 ? "" : "s"} (${how}) of ${entry} on ${address} (supervisor pid ${process.pid}${reaper ? ", reaping orphans" : ""}${identity ? `, workers as ${identity.label}` : ""})`,
    );
    logger.info(
      `control socket: ${control?.path ?? "none"}${adminServer ? `; admin: ${adminServer.url}` : ""}`,
    );
    const hostOptions: HostOptions = {
      worker: workerSettings(options, entry),
      env,
      ...(identity?.uid === undefined ? {} : { uid: identity.uid }),
      ...(identity?.gid === undefined ? {} : { gid: identity.gid }),
    };
    const hooks: SupervisionHooks = {
      ...(notifier ? { onTransition: notifier.onTransition } : {}),
      ...(config?.hooks.onReady ? { onReady: config.hooks.onReady } : {}),
      ...(config?.hooks.onWorkerExit ? { onWorkerExit: config.hooks.onWorkerExit } : {}),
    };
    if (config && reresolve) {
      hooks.beforeReload = async () => {
        const next = await reresolve();
        applyOnReload(next.options, options, hostOptions, supervision as Supervision, logger);
        options = next.options;
      };
    }
    supervision = superviseWorkers(
      {
        workers,
        bootTimeoutMs: options.bootTimeoutMs,
        gracefulTimeoutMs: options.gracefulTimeoutMs,
        timeoutMs: options.timeoutMs,
        maxMemoryBytes: options.maxMemoryBytes,
        maxRestarts: options.maxRestarts,
        shutdownDelayMs: options.shutdownDelayMs,
        address,
      },
      hostOptions,
      logger,
      hooks,
    );
    // While the workers boot: one warning line, only when a host setting is off (`supervisor check`).
    void import("./host-checks.ts").then((m) => m.warnAboutHost(workers, logger));
    if (options.watch.length > 0) {
      const { watchForChanges } = await import("./watch.ts");
      const watcher = watchForChanges(entry, options.watch, logger, () => void supervision?.actions.reload());
      cleanup.push(() => watcher.close());
    }
    const code = await supervision.done;
    await runCleanup();
    return code;
  } catch (error) {
    await runCleanup();
    throw error;
  }
}

/** Every check that needs no process and no port (shared with `supervisor check`). */
export function checkRunnable(options: RunOptions) {
  if (options.chdir) changeDirectory(options.chdir);
  const entry = checkEntry(options.entry);
  if (options.tlsCert && options.tlsKey) {
    checkReadable(options.tlsCert, "--tls-cert");
    checkReadable(options.tlsKey, "--tls-key");
  }
  const identity = resolveIdentity(options.user, options.group);
  const admin = options.admin === undefined ? undefined : parseAdminSpec(options.admin);
  if (admin && admin.port === options.port) {
    throw usageError(`--admin port ${admin.port} is the app's port; give the admin endpoint its own`);
  }
  return { entry, identity, admin };
}

// --- internal ---

/**
 * The control socket. A default path that cannot be used (a read-only file system, an unsafe temp
 * directory) costs only the control commands: a warning, not a failed start. An explicit --control
 * must work, and a live supervisor on the same socket always stops us (exit 3).
 */
async function openControlSocket(
  options: RunOptions,
  actions: ControlActions,
  logger: Logger,
): Promise<ControlServer | undefined> {
  try {
    return await startControlServer(options.control ?? defaultControlPath(options.port), actions);
  } catch (error) {
    const live = error instanceof SupervisorError && error.exitCode === ExitCode.BOOT;
    if (options.control !== undefined || live || !(error instanceof SupervisorError)) throw error;
    logger.warn(
      `no control socket (${error.message}); status/reload/scale/stop will not reach this supervisor: pass --control <path> on a writable volume (Kubernetes readOnlyRootFilesystem: an emptyDir at /tmp)`,
    );
    return undefined;
  }
}

function workerSettings(options: RunOptions, entry: string): HostOptions["worker"] {
  return {
    entry,
    port: options.port,
    host: options.host,
    gracefulTimeoutMs: options.gracefulTimeoutMs,
    heartbeatMs: heartbeatInterval(options.timeoutMs),
    maxRequests: options.maxRequests,
    maxRequestsJitter: options.maxRequestsJitter,
    ...(options.tlsCert && options.tlsKey
      ? { tls: { cert: resolve(options.tlsCert), key: resolve(options.tlsKey) } }
      : {}),
    accessLog: options.accessLog,
    logFormat: options.logFormat,
  };
}

/** HUP re-read the config file: what workers are started with changes now (the reload then replaces
 * every worker); the address, user and files the supervisor itself holds need a restart. */
function applyOnReload(
  next: RunOptions,
  prev: RunOptions,
  host: HostOptions,
  supervision: Supervision,
  logger: Logger,
): void {
  for (const key of [
    "port",
    "host",
    "user",
    "group",
    "chdir",
    "pidfile",
    "control",
    "admin",
    "init",
  ] as const) {
    if (JSON.stringify(next[key]) !== JSON.stringify(prev[key])) {
      logger.warn(`config: ${key} changed; it takes effect at the next start, not on reload`);
    }
  }
  host.worker = { ...workerSettings(next, checkEntry(next.entry)), port: prev.port, host: prev.host };
  host.env = { ...process.env, ...next.env };
  supervision.emit({
    type: "configure",
    config: {
      bootTimeoutMs: next.bootTimeoutMs,
      gracefulTimeoutMs: next.gracefulTimeoutMs,
      timeoutMs: next.timeoutMs,
      maxMemoryBytes: next.maxMemoryBytes,
      maxRestarts: next.maxRestarts,
      shutdownDelayMs: next.shutdownDelayMs,
    },
  });
  if (next.workers !== prev.workers && next.workers !== "auto") {
    supervision.emit({ type: "scale", workers: next.workers });
  }
  logger.info("config file re-read");
}

/** Control and admin requests that arrive before the workers exist see a booting supervisor. */
function lateActions(current: () => Supervision | undefined): ControlActions & { isShuttingDown(): boolean } {
  const notYet = { ok: false, message: "the supervisor is still starting" };
  return {
    snapshot: () =>
      current()?.actions.snapshot() ?? {
        pid: process.pid,
        version: "",
        phase: "booting",
        uptimeMs: 0,
        address: "",
        workersConfigured: 0,
        workersReady: 0,
        workers: [],
        restarts: noRestarts(),
      },
    isShuttingDown: () => current()?.actions.isShuttingDown() ?? false,
    reload: () => current()?.actions.reload() ?? Promise.resolve(notYet),
    scale: (n, relative) => current()?.actions.scale(n, relative) ?? Promise.resolve(notYet),
    stop: () => current()?.actions.stop() ?? Promise.resolve(notYet),
  };
}

function workerCount(options: RunOptions, sources: Sources): { workers: number; how: string } {
  if (options.workers !== "auto") return { workers: options.workers, how: `from ${sources.workers}` };
  const cpus = availableCpus();
  return { workers: cpus.count, how: `auto: ${cpus.reason}` };
}

function changeDirectory(dir: string): void {
  try {
    process.chdir(dir);
  } catch {
    throw usageError(`--chdir: cannot change to directory ${dir}`);
  }
}

/** The entry's absolute path, or a usage error naming what is wrong with it. */
function checkEntry(entry: string): string {
  const path = resolve(entry);
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch {
    throw usageError(`app file not found: ${entry}`);
  }
  if (!isFile) throw usageError(`app entry is not a file: ${entry}`);
  checkReadable(path, "app file", entry);
  return path;
}

function checkReadable(path: string, what: string, shown = path): void {
  try {
    if (!statSync(path).isFile()) throw new Error("not a file");
    accessSync(path, constants.R_OK);
  } catch (error) {
    if (error instanceof SupervisorError) throw error;
    throw usageError(`${what} is missing or not a readable file: ${shown}`);
  }
}
