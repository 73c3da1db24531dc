// Starts and signals the worker processes (the supervisor's one other child is --pre-start's shell,
// src/runtime/pre-start.ts; the config file's hooks run in the supervisor's own process). It turns
// what happens to a worker process (the messages on its channel, its exit) into lifecycle events and
// hands them to `emit`; it decides nothing. workerLaunch is the one place a worker's command line and
// environment are made.
// The channel is a socket pair on the worker's fd 3 (Bun.spawn's 4th stdio entry), carrying JSON
// lines, not Bun's IPC: Bun's IPC channel wakes the parent about once a second per child even when
// nothing is sent (docs/BENCHMARKS.md, "Memory and idle cost").

import { closeSync } from "node:fs";
import type { Subprocess } from "bun";
import type { RequestMetrics } from "../control/request-metrics.ts";
import type { Event } from "../core/types.ts";
import type { BeatFiles } from "../os/beat-files.ts";
import { trackChild, untrackChild } from "../os/children.ts";
import {
  CHANNEL_FD,
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
  /** The core's heartbeat check: one "heartbeats" event with each of these workers whose beat count
   * moved since the last read, its beat put on the supervisor's clock (a worker without a beat file
   * sends its own as messages). */
  readHeartbeats(ids: number[]): void;
  /** The failure protocol's stop, deciding nothing: QUIT to every worker (they exit at once), SIGKILL
   * to any still there after `graceMs`; resolves when all are gone. */
  stopAll(graceMs: number): Promise<void>;
}

/** What every worker is started with; `worker` is the part each worker reads from its config. Read at
 * each spawn, so a re-read config file applies to the workers started after it (a reload). */
export interface HostOptions {
  worker: Omit<WorkerConfig, "slot" | "heartbeatMs" | "channel">;
  env: Record<string, string | undefined>;
  /** Drop privileges for workers (--user/--group, when started as root). */
  uid?: number;
  gid?: number;
  /** With --admin: each worker records its requests in a file of its own, made here before it starts. */
  requestMetrics?: RequestMetrics;
  /** Each worker's heartbeat file (absent when no shared directory could be made: beats as messages). */
  beats?: BeatFiles;
}

/** The worker's code, bundled into one script when the supervisor is bundled (a macro: no work at run time). */
const workerJs = workerJavaScript();

export function createWorkerHost(options: HostOptions, emit: (event: Event) => void): WorkerHost {
  const procs = new Map<number, Subprocess>();
  /** The beat count last read per worker. */
  const beatsRead = new Map<number, number>();
  /** Per worker, the supervisor's performance.now() minus the worker's, from its "ready" message: a
   * beat's time on our clock. The message's travel makes it a little large, so a beat reads as a
   * little later than it was: a hung worker is killed that much later, never sooner. */
  const clockOffsets = new Map<number, number>();

  return {
    spawn(id, slot, heartbeatMs) {
      const metrics = options.requestMetrics;
      const config: WorkerConfig = {
        ...options.worker,
        slot,
        heartbeatMs,
        channel: true,
      };
      const owner = { uid: options.uid, gid: options.gid };
      if (metrics) config.metricsFile = metrics.open(id, owner);
      const beatFile = options.beats?.open(id, owner);
      if (beatFile) config.beatFile = beatFile;
      let proc: Subprocess;
      try {
        const launch = workerLaunch(config, options.env);
        proc = Bun.spawn(launch.cmd, {
          env: launch.env,
          stdio: ["ignore", "inherit", "inherit", "pipe"],
          ...(options.uid === undefined ? {} : { uid: options.uid }),
          ...(options.gid === undefined ? {} : { gid: options.gid }),
        });
      } catch (error) {
        metrics?.close(id);
        options.beats?.close(id);
        emit({ type: "spawn-failed", id, message: error instanceof Error ? error.message : String(error) });
        return;
      }
      metrics?.spawned(id, proc.pid);
      procs.set(id, proc);
      trackChild(proc.pid);
      emit({ type: "spawned", id, pid: proc.pid });
      const channel = openChannel(proc, (message) => {
        if (message?.type === "ready" && typeof message.at === "number") {
          clockOffsets.set(id, performance.now() - message.at);
        }
        const event = messageEvent(id, message);
        if (event) emit(event);
      });
      void proc.exited.then(async () => {
        // What it wrote before it exited (a boot error) is heard before its exit.
        await channel.close();
        procs.delete(id);
        untrackChild(proc.pid);
        // Its counts join the totals before anyone hears it is gone.
        metrics?.close(id);
        options.beats?.close(id);
        beatsRead.delete(id);
        clockOffsets.delete(id);
        const signal = proc.signalCode === null ? null : String(proc.signalCode);
        emit({ type: "exit", id, code: proc.exitCode, signal });
      });
    },
    kill(id, signal) {
      // Killing a process that already exited does not throw in Bun; an exit event is on its way.
      procs.get(id)?.kill(signal);
    },
    readHeartbeats(ids) {
      const beats: { id: number; requests: number; at: number }[] = [];
      for (const id of ids) {
        const beat = options.beats?.read(id);
        if (!beat || beat.beats === (beatsRead.get(id) ?? 0)) continue;
        beatsRead.set(id, beat.beats);
        // Without an offset (no `at` in its ready message), a moved beat is known only as seen now.
        const offset = clockOffsets.get(id);
        const at = offset === undefined ? performance.now() : beat.at + offset;
        beats.push({ id, requests: beat.requests, at });
      }
      emit({ type: "heartbeats", beats });
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

export interface Channel {
  /** Read what is left, then close the supervisor's end; resolves when closed. */
  close(): Promise<void>;
}

/** A worker's channel (fd 3 in the worker; `proc.stdio[CHANNEL_FD]` here, a plain fd number): each
 * JSON line becomes a message. Malformed lines are dropped: only our worker code writes here. */
export function openChannel(proc: Subprocess, onMessage: (message: WorkerMessage) => void): Channel {
  const fd = proc.stdio[CHANNEL_FD] as unknown as number;
  const reader = Bun.file(fd).stream().getReader();
  // The stream reads a duplicate of the fd, which it closes at its end: the original is not needed
  // (kept, the supervisor would hold 3 fds per worker instead of 2).
  closeSync(fd);
  const decoder = new TextDecoder();
  let buffered = "";
  const done = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffered += decoder.decode(value, { stream: true });
      let newline = buffered.indexOf("\n");
      while (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf("\n");
        try {
          onMessage(JSON.parse(line) as WorkerMessage);
        } catch {
          // not a message of ours
        }
      }
    }
  })().catch(() => {});
  return {
    async close() {
      // The end-of-file comes with the exit. (Bun's spawn passes no fd past stdio to the app's
      // children, but should some other way leave fd 3 open in one that outlives the worker, what
      // was written is read and no more is waited for.)
      let timer: Timer | undefined;
      await Promise.race([done, new Promise((resolve) => (timer = setTimeout(resolve, CHANNEL_DRAIN_MS)))]);
      clearTimeout(timer);
      await reader.cancel().catch(() => {});
    },
  };
}

// --- internal ---

/** How long a dead worker's channel is read for when its end-of-file does not come. */
const CHANNEL_DRAIN_MS = 50;

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
      return typeof message.requests === "number"
        ? { type: "retire", id, reason: message.reason, requests: message.requests }
        : { type: "retire", id, reason: message.reason };
    default:
      return undefined;
  }
}
