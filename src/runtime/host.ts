// Starts and signals the worker processes (the supervisor's one other child is --pre-start's shell,
// src/runtime/pre-start.ts; the config file's hooks run in the supervisor's own process). It turns
// what happens to a worker process (its IPC messages, its exit) into lifecycle events and hands them
// to `emit`; it decides nothing. workerLaunch is the one place a worker's command line and
// environment are made.

import type { Subprocess } from "bun";
import type { RequestMetrics } from "../control/request-metrics.ts";
import type { Event } from "../core/types.ts";
import { trackChild, untrackChild } from "../os/children.ts";
import {
  WORKER_CONFIG_ENV,
  WORKER_SOURCE_ENV,
  type WorkerConfig,
  type WorkerMessage,
} from "../worker/protocol.ts";
import { workerJavaScript } from "../worker/source.ts" with { type: "macro" };

export interface WorkerHost {
  /** `heartbeatMs`: how often the worker is to send heartbeats (the core decides it). */
  spawn(id: number, slot: number, heartbeatMs: number): void;
  kill(id: number, signal: NodeJS.Signals): void;
  /** The failure protocol's stop, deciding nothing: QUIT to every worker (they exit at once), SIGKILL
   * to any still there after `graceMs`; resolves when all are gone. */
  stopAll(graceMs: number): Promise<void>;
}

/** What every worker is started with; `worker` is the part each worker reads from its config. Read at
 * each spawn, so a re-read config file applies to the workers started after it (a reload). */
export interface HostOptions {
  worker: Omit<WorkerConfig, "slot" | "parentPid" | "heartbeatMs">;
  env: Record<string, string | undefined>;
  /** Drop privileges for workers (--user/--group, when started as root). */
  uid?: number;
  gid?: number;
  /** With --admin: each worker records its requests in a file of its own, made here before it starts. */
  requestMetrics?: RequestMetrics;
}

/** The worker's code, bundled into one script when the supervisor is bundled (a macro: no work at run time). */
const workerJs = workerJavaScript();

export function createWorkerHost(options: HostOptions, emit: (event: Event) => void): WorkerHost {
  const procs = new Map<number, Subprocess>();

  return {
    spawn(id, slot, heartbeatMs) {
      const metrics = options.requestMetrics;
      const config: WorkerConfig = { ...options.worker, slot, parentPid: process.pid, heartbeatMs };
      if (metrics) config.metricsFile = metrics.open(id, { uid: options.uid, gid: options.gid });
      let proc: Subprocess;
      try {
        const launch = workerLaunch(config, options.env);
        proc = Bun.spawn(launch.cmd, {
          env: launch.env,
          stdio: ["ignore", "inherit", "inherit"],
          serialization: "json",
          ...(options.uid === undefined ? {} : { uid: options.uid }),
          ...(options.gid === undefined ? {} : { gid: options.gid }),
          ipc: (message: WorkerMessage) => {
            const event = messageEvent(id, message);
            if (event) emit(event);
          },
        });
      } catch (error) {
        metrics?.close(id);
        emit({ type: "spawn-failed", id, message: error instanceof Error ? error.message : String(error) });
        return;
      }
      metrics?.spawned(id, proc.pid);
      procs.set(id, proc);
      trackChild(proc.pid);
      emit({ type: "spawned", id, pid: proc.pid });
      void proc.exited.then(() => {
        procs.delete(id);
        untrackChild(proc.pid);
        // Its counts join the totals before anyone hears it is gone.
        metrics?.close(id);
        const signal = proc.signalCode === null ? null : String(proc.signalCode);
        emit({ type: "exit", id, code: proc.exitCode, signal });
      });
    },
    kill(id, signal) {
      // Killing a process that already exited does not throw in Bun; an exit event is on its way.
      procs.get(id)?.kill(signal);
    },
    async stopAll(graceMs) {
      const all = [...procs.values()];
      for (const proc of all) proc.kill("SIGQUIT");
      const gone = Promise.all(all.map((proc) => proc.exited));
      let timer: Timer | undefined;
      const late = new Promise<"late">((resolve) => {
        timer = setTimeout(() => resolve("late"), graceMs);
      });
      const outcome = await Promise.race([gone, late]);
      clearTimeout(timer);
      if (outcome !== "late") return;
      for (const proc of all) if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await gone;
    },
  };
}

/**
 * How to run a worker. Compiled, `process.execPath` is this binary, which acts as the bun CLI when
 * BUN_BE_BUN=1; from source it is bun itself. `bun -e <stub> <entry>` gives the app
 * `process.argv` = [bun, entry], as under `bun entry`. The stub runs the worker's code from the
 * environment as an async function body: the bun CLI cannot import files embedded in the binary, and
 * this keeps `ps` short, with no temporary file to write or clean up.
 */
export function workerCommand(entry: string, executable = process.execPath): string[] {
  const stub = `await (async()=>{}).constructor("require",process.env.${WORKER_SOURCE_ENV})(require)`;
  return [executable, "-e", stub, entry];
}

/** The one place that builds a worker's command and environment: the host's, and that of whatever
 * starts a worker without a supervisor (test/worker-harness.ts, scripts/bench/startup.ts). `js`: the
 * worker's code (the bundled src/worker/ unless another version is compared). */
export function workerLaunch(
  config: WorkerConfig,
  env: Record<string, string | undefined>,
  { executable = process.execPath, js = workerJs }: { executable?: string; js?: string | undefined } = {},
): { cmd: string[]; env: Record<string, string | undefined> } {
  return {
    cmd: workerCommand(config.entry, executable),
    env: {
      ...env,
      PORT: String(config.port),
      SUPERVISOR_WORKER_ID: String(config.slot),
      [WORKER_CONFIG_ENV]: JSON.stringify(config),
      [WORKER_SOURCE_ENV]: js,
      // The binary acts as the bun CLI for the worker and for anything the app spawns with execPath.
      BUN_BE_BUN: "1",
    },
  };
}

// --- internal ---

function messageEvent(id: number, message: WorkerMessage): Event | undefined {
  switch (message?.type) {
    case "ready":
      return typeof message.startupMs === "number"
        ? { type: "ready", id, startupMs: message.startupMs }
        : { type: "ready", id };
    case "serving":
      return { type: "serving", id };
    case "boot-error":
      return { type: "boot-error", id, message: message.message };
    case "heartbeat":
      return { type: "heartbeat", id, requests: message.requests };
    case "retire":
      return { type: "retire", id, reason: message.reason };
    default:
      return undefined; // not ours: an app may use process.send for its own reasons
  }
}
