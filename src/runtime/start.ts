// What `supervisor run` does with resolved options, in order: check everything that can be checked
// before a process starts (each failure is one line and an exit code, with nothing left behind), run
// --pre-start, then supervise the workers until they are all gone, and clean up.

import { rmSync } from "node:fs";
import { resolve } from "node:path";
import type { LoadedConfig } from "../config/file.ts";
import { MAX_IDLE_TIMEOUT_S, type RunOptions, type Sources } from "../config/options.ts";
import { type AdminServer, startAdminServer } from "../control/admin.ts";
import { defaultControlPath } from "../control/paths.ts";
import type { RequestMetrics } from "../control/request-metrics.ts";
import { type ControlServer, DRAIN_TIMEOUT_MS, startControlServer } from "../control/server.ts";
import type { ControlActions, Snapshot } from "../control/types.ts";
import { ExitCode, SupervisorError } from "../core/exit-codes.ts";
import { isSettled, noRestarts } from "../core/lifecycle.ts";
import { KILL_MARGIN_MS } from "../core/timings.ts";
import { createBeatFiles } from "../os/beat-files.ts";
import { isTrackedChild } from "../os/children.ts";
import { availableCpus } from "../os/cpus.ts";
import { processExists, removePidfile, writePidfile } from "../os/pidfile.ts";
import { claimFrom, claimPort, type PortClaim } from "../os/port-claim.ts";
import { assertPortFree } from "../os/port-probe.ts";
import type { Reaper } from "../os/reaper.ts";
import { makeSharedDir } from "../os/shared-dir.ts";
import type { HostOptions } from "./host.ts";
import { createLogger, type Logger } from "./log.ts";
import { type Supervision, type SupervisionHooks, superviseWorkers } from "./loop.ts";
import { checkEntry, checkRunnable } from "./preflight.ts";
import { startupSignals } from "./signals.ts";
import {
  announceReady,
  captureLaunch,
  type Launch,
  predecessorPid,
  sendMainPid,
  successorHost,
  systemdWithoutNotify,
  waitForExit,
} from "./upgrade.ts";

/** How long a successor waits for the old supervisor's port claim after the hand-over was agreed
 * (the old one releases it before it answers: normally at once). */
const CLAIM_HANDOVER_MS = 5_000;

/** How long the workers must have been settled (all ready, none being replaced) before the supervisor
 * unmaps the code it ran to get there (src/os/code-pages.ts): the ready line, systemd's READY=1 and
 * the config file's onReady hook have run by then, and a burst of events costs one call. */
const DROP_CODE_AFTER_MS = 1_000;

/** Resolves the options again (flags and environment as given, the config file re-read), for HUP. */
export type Reresolve = () => Promise<{ options: RunOptions; sources: Sources }>;

export async function startRun(
  options: RunOptions,
  sources: Sources,
  config?: LoadedConfig,
  reresolve?: Reresolve,
): Promise<number> {
  // How to start our successor (an upgrade), captured before --chdir or anything else changes it;
  // and whether we are one.
  const launch = captureLaunch();
  const predecessor = predecessorPid();
  let exitCode: number | undefined;
  // From here on resources are held: a stop signal is a request that the steps below honour.
  const signals = startupSignals();
  signals.hold();
  const logger = await createLogger({ format: options.logFormat, level: options.logLevel });
  signals.logTo((message) => logger.info(message));
  const { entry, identity, admin } = checkRunnable(options);
  const { workers, how } = workerCount(options, sources);
  const cleanup: (() => unknown)[] = [];
  const runCleanup = async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  };
  let supervision: Supervision | undefined;
  let failure: unknown;
  // The failure protocol's net (src/runtime/loop.ts): whatever escapes (a timer, a watcher, something
  // a config hook left running) ends the run as a decided failure, never as a stack trace.
  const onEscaped = (error: unknown) => {
    if (supervision) return supervision.fail(error);
    if (failure !== undefined) return;
    failure = error;
    logger.error(`internal error: ${error instanceof Error ? error.message : String(error)}; exiting`);
    signals.abort();
    void runCleanup().finally(() => process.exit(ExitCode.RUNTIME));
  };
  signals.onEscaped(onEscaped);
  /** A stop signal (or an escaped error) arrived during start-up: clean up, start nothing. */
  const interrupted = () => signals.stopRequested !== undefined || failure !== undefined;
  const endEarly = async () => {
    await runCleanup();
    return failure === undefined ? ExitCode.OK : ExitCode.RUNTIME;
  };
  const scheme = options.tlsCert ? "https" : "http";
  const address = `${scheme}://${options.host.includes(":") ? `[${options.host}]` : options.host}:${options.port}`;

  try {
    // Atomic ownership first: of two supervisors started at once on this address exactly one passes.
    // The successor of an upgrade is let past the old supervisor's claim and its workers' port, and
    // takes the claim, pidfile, admin port and control socket when it takes over (src/runtime/upgrade.ts).
    const held: Held = {};
    if (predecessor === undefined) held.claim = await claimPort(options.host, options.port);
    const handover =
      predecessor === undefined ? undefined : await claimFrom(options.host, options.port, predecessor);
    cleanup.push(() => held.claim?.release());
    if (predecessor === undefined) assertPortFree(options.host, options.port);
    const pidfile = options.pidfile ? resolve(options.pidfile) : undefined;
    if (pidfile) {
      if (predecessor === undefined) writePidfile(pidfile);
      cleanup.push(() => removePidfile(pidfile)); // only while it holds our pid
    }
    let reaper: Reaper | undefined;
    // Optional parts are imported only when asked for: start-up time is part of every launch.
    if (process.pid === 1 || options.init) {
      // PID 1 gets orphans reparented to it and no default signal actions: do an init's work.
      const { startReaper } = await import("../os/reaper.ts");
      reaper = startReaper({ isTracked: isTrackedChild });
      cleanup.push(() => reaper?.stop());
    }
    if (interrupted()) return await endEarly();
    // Files the supervisor and its workers map: the workers' heartbeats and, with --admin, their
    // request counts over all workers (src/control/request-metrics.ts).
    const sharedDir = makeSharedDir();
    if (sharedDir) cleanup.push(() => rmSync(sharedDir, { recursive: true, force: true }));
    if (admin && !sharedDir) {
      throw new SupervisorError(
        "--admin: no writable directory for the request metrics (/dev/shm or the temp directory)",
        ExitCode.RUNTIME,
      );
    }
    const requestMetrics =
      admin && sharedDir
        ? (await import("../control/request-metrics.ts")).createRequestMetrics(sharedDir)
        : undefined;
    if (requestMetrics) cleanup.push(() => requestMetrics.dispose());
    const beats = sharedDir ? createBeatFiles(sharedDir) : undefined;
    // Started before the workers so a clash ends here; answers once the workers exist.
    const late = lateActions(() => supervision, requestMetrics);
    const openControl = () => openControlSocket(options, late, logger);
    if (predecessor === undefined) held.control = await openControl();
    cleanup.push(() => held.control?.stop());
    const startAdmin = async () => (admin ? startAdminServer(options.admin as string, late) : undefined);
    if (predecessor === undefined) held.admin = await startAdmin();
    cleanup.push(() => held.admin?.stop());
    // Watching starts before any worker: a directory that cannot be watched ends the start here.
    if (options.watch.length > 0) {
      const { watchForChanges } = await import("./watch.ts");
      const watcher = watchForChanges(entry, options.watch, logger, () => void supervision?.actions.reload());
      cleanup.push(() => watcher.close());
    }
    if (interrupted()) return await endEarly();

    // Under systemd (Type=notify); before `env` is taken, since it removes NOTIFY_SOCKET from it.
    const notifier = process.env.NOTIFY_SOCKET
      ? (await import("./notify.ts")).systemdNotifier(logger)
      : undefined;
    const env: Record<string, string | undefined> = { ...process.env, ...options.env };
    if (options.preStart) {
      const { runPreStart } = await import("./pre-start.ts");
      const code = await runPreStart(options.preStart, env, logger, signals);
      // Stopped by our own TERM/INT/QUIT: the stop that was asked for, not a failed pre-start.
      if (interrupted()) return await endEarly();
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
      `starting ${workers} worker${workers === 1 ? "" : "s"} (${how}) of ${entry} on ${address} (supervisor pid ${process.pid}${predecessor ? `, upgrading pid ${predecessor}` : ""}${reaper ? ", reaping orphans" : ""}${identity ? `, workers as ${identity.label}` : ""})`,
    );
    if (predecessor === undefined) {
      logger.info(
        `control socket: ${held.control?.path ?? "none"}${held.admin ? `; admin: ${held.admin.url}` : ""}`,
      );
    }
    const hostOptions: HostOptions = {
      worker: workerSettings(options, sources, entry),
      env,
      ...(identity?.uid === undefined ? {} : { uid: identity.uid }),
      ...(identity?.gid === undefined ? {} : { gid: identity.gid }),
      ...(requestMetrics ? { requestMetrics } : {}),
      ...(beats ? { beats } : {}),
    };
    const dropCode = codeDropper();
    const hooks: SupervisionHooks = {
      onTransition: (before, after) => {
        notifier?.onTransition(before, after);
        if (isSettled(after) && !isSettled(before)) dropCode.soon();
      },
      ...(config?.hooks.onReady ? { onReady: config.hooks.onReady } : {}),
      ...(config?.hooks.onWorkerExit ? { onWorkerExit: config.hooks.onWorkerExit } : {}),
      // Our own upgrade: what only one supervisor may hold is released for the successor.
      successor: successorHost(
        launch,
        options.gracefulTimeoutMs + KILL_MARGIN_MS,
        (pid) => releaseFor(pid, held, launch),
        logger,
      ),
    };
    if (predecessor !== undefined && handover) {
      // We are the successor: once every worker is ready, take over from the old supervisor.
      hooks.whenRunning = () =>
        void takeOver({
          predecessor,
          handover,
          held,
          pidfile,
          options,
          launch,
          logger,
          startAdmin,
          openControl,
          stopping: () => supervision?.actions.isShuttingDown() !== false,
        }).then((ok) => {
          if (ok) return;
          exitCode = ExitCode.RUNTIME;
          void supervision?.actions.stop();
        }, onEscaped);
    }
    if (config && reresolve) {
      hooks.beforeReload = async () => {
        const next = await reresolve();
        applyOnReload(next, options, hostOptions, supervision as Supervision, logger);
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
        pid1: process.pid === 1,
        systemdWithoutNotify: systemdWithoutNotify(launch.env),
      },
      hostOptions,
      logger,
      hooks,
      (deliver) => signals.handOver(deliver).done,
    );
    // While the workers boot: one warning line, only when a host setting is off (`supervisor check`).
    void import("../os/host-checks.ts").then((m) => m.warnAboutHost(workers, logger));
    const code = await supervision.done;
    await runCleanup();
    return exitCode ?? code;
  } catch (error) {
    await runCleanup();
    throw error;
  }
}

// --- internal ---

/** `soon()`: unmap the supervisor's code DROP_CODE_AFTER_MS from now, unless asked again before then.
 * The timer never keeps a stopping process alive. */
function codeDropper() {
  let timer: Timer | undefined;
  const drop = () => void import("../os/code-pages.ts").then((m) => m.dropOwnCode()).catch(() => {});
  return {
    soon() {
      clearTimeout(timer);
      timer = setTimeout(drop, DROP_CODE_AFTER_MS).unref();
    },
  };
}

/** What only one supervisor per address holds; an upgrade moves it from the old one to the new. */
interface Held {
  claim?: PortClaim;
  control?: ControlServer;
  admin?: AdminServer;
}

/** The old supervisor's side of an upgrade's hand-over: the admin port and the port claim go. */
async function releaseFor(pid: number, held: Held, launch: Launch): Promise<void> {
  // First, in the loop's turn: systemd follows the new pid before it hears anything else from us
  // (a notifier's STOPPING=1 for our drain would otherwise stop the service).
  sendMainPid(launch.env, pid);
  const admin = held.admin;
  delete held.admin;
  await admin?.stop();
  held.claim?.release();
}

/**
 * The new supervisor's side, once all its workers are ready: tell the old one; once it has answered
 * (its admin port and claim released), take the claim, the pidfile and the admin port, tell systemd
 * our pid, and the control socket's path once the old one is gone (it answers `supervisor upgrade`
 * there until then). False when the old one, still there, refused: we stop (exit 1).
 */
async function takeOver(t: {
  predecessor: number;
  handover: { take(timeoutMs: number): Promise<PortClaim> };
  held: Held;
  pidfile: string | undefined;
  options: RunOptions;
  launch: Launch;
  logger: Logger;
  startAdmin: () => Promise<AdminServer | undefined>;
  openControl: () => Promise<ControlServer | undefined>;
  stopping: () => boolean;
}): Promise<boolean> {
  const { predecessor, held, options, logger } = t;
  const warn = (what: string, error: unknown) =>
    logger.warn(`upgrade: ${what}: ${error instanceof Error ? error.message : String(error)}`);
  const answer = await announceReady(resolve(options.control ?? defaultControlPath(options.port)));
  // An old supervisor that vanished meanwhile (SIGKILL) took its workers with it: we serve on.
  if (!answer.ok && processExists(predecessor)) {
    logger.error(
      `upgrade: the old supervisor (pid ${predecessor}) did not hand over: ${answer.message}; stopping`,
    );
    return false;
  }
  held.claim = await t.handover.take(CLAIM_HANDOVER_MS).catch((error) => void warn("port claim", error));
  if (t.stopping()) return true;
  if (t.pidfile) {
    try {
      writePidfile(t.pidfile, predecessor);
    } catch (error) {
      warn("pidfile", error);
    }
  }
  held.admin = await t.startAdmin().catch((error) => void warn("--admin", error));
  sendMainPid(t.launch.env, process.pid);
  const admin = held.admin ? `; admin: ${held.admin.url}` : "";
  logger.info(`upgrade: took over from pid ${predecessor}${admin}; the control socket follows once it exits`);
  await waitForExit(predecessor, options.gracefulTimeoutMs + KILL_MARGIN_MS + DRAIN_TIMEOUT_MS + 5_000);
  if (t.stopping()) return true;
  held.control = await t.openControl().catch((error) => void warn("control socket", error));
  logger.info(`upgrade: pid ${predecessor} is gone; control socket: ${held.control?.path ?? "none"}`);
  return true;
}

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

function workerSettings(options: RunOptions, sources: Sources, entry: string): HostOptions["worker"] {
  return {
    entry,
    port: options.port,
    host: options.host,
    gracefulTimeoutMs: options.gracefulTimeoutMs,
    bootTimeoutMs: options.bootTimeoutMs,
    maxRequests: options.maxRequests,
    maxRequestsJitter: options.maxRequestsJitter,
    ...(options.tlsCert && options.tlsKey
      ? { tls: { cert: resolve(options.tlsCert), key: resolve(options.tlsKey) } }
      : {}),
    accessLog: options.accessLog,
    logFormat: options.logFormat,
    idleTimeout: idleTimeout(options),
    maxBody: {
      bytes: options.maxBodyBytes > 0 ? options.maxBodyBytes : Number.MAX_SAFE_INTEGER,
      explicit: sources.maxBodyBytes !== "default",
    },
    development: options.watch.length > 0,
  };
}

/**
 * Bun.serve's idleTimeout cuts a handler that sends nothing for that long (its default, 10 s, is far
 * below --timeout's 30 s). Unless --keep-alive says otherwise it follows --timeout, so any request
 * the hung-worker check allows can complete: --timeout off (0) gives Bun's maximum, 255 s.
 */
function idleTimeout(options: RunOptions): { seconds: number; explicit: boolean } {
  if (options.keepAliveMs !== undefined) {
    // Bun.serve takes whole seconds; only the user sets keepAliveMs, so it wins over the app's own.
    return { seconds: Math.ceil(options.keepAliveMs / 1000), explicit: true };
  }
  const follow = options.timeoutMs > 0 ? Math.ceil(options.timeoutMs / 1000) : MAX_IDLE_TIMEOUT_S;
  return { seconds: Math.min(MAX_IDLE_TIMEOUT_S, follow), explicit: false };
}

/** HUP re-read the config file: what workers are started with changes now (the reload then replaces
 * every worker); the address, user and files the supervisor itself holds need a restart. */
function applyOnReload(
  { options: next, sources }: { options: RunOptions; sources: Sources },
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
  host.worker = {
    ...workerSettings(next, sources, checkEntry(next.entry)),
    port: prev.port,
    host: prev.host,
  };
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
function lateActions(
  current: () => Supervision | undefined,
  requestMetrics: RequestMetrics | undefined,
): ControlActions & { isShuttingDown(): boolean } {
  const notYet = { ok: false, message: "the supervisor is still starting" };
  const snapshot = (): Snapshot =>
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
    };
  return {
    snapshot: () => {
      const s = snapshot();
      if (!requestMetrics) return s;
      const workers = s.workers.map((w) => {
        const http = w.pid === null ? undefined : requestMetrics.byPid(w.pid);
        return http ? { ...w, http } : w;
      });
      return { ...s, workers, http: requestMetrics.totals() };
    },
    isShuttingDown: () => current()?.actions.isShuttingDown() ?? false,
    reload: () => current()?.actions.reload() ?? Promise.resolve(notYet),
    scale: (n, relative) => current()?.actions.scale(n, relative) ?? Promise.resolve(notYet),
    stop: () => current()?.actions.stop() ?? Promise.resolve(notYet),
    upgrade: () => current()?.actions.upgrade() ?? Promise.resolve(notYet),
    signal: (name) => current()?.actions.signal(name) ?? Promise.resolve(notYet),
    successorReady: (pid, version) =>
      current()?.actions.successorReady(pid, version) ?? Promise.resolve(notYet),
  };
}

function workerCount(options: RunOptions, sources: Sources): { workers: number; how: string } {
  if (options.workers !== "auto") return { workers: options.workers, how: `from ${sources.workers}` };
  const cpus = availableCpus();
  return { workers: cpus.count, how: `auto: ${cpus.reason}` };
}
