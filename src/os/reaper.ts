// An init's duty, for PID 1 in a container (or `--init`): reap orphans. A process whose parent dies
// is reparented to the nearest "child subreaper" or to PID 1, and stays a zombie (a process-table
// entry, and a pid, forever) until that process waits for it. Bun only waits for the children it
// spawned itself, so an app that runs `sh -c 'cmd &'` fills the table with zombies (docs/DESIGN.md).
//
// How, and why this way:
// - Not `waitpid(-1, WNOHANG)`: it also reaps Bun.spawn's own children, Bun then gets ECHILD for them
//   and crashed (docs/DESIGN.md). We wait only for specific pids: zombies whose parent is us and which the
//   caller says are not its Bun.spawn children (`isTracked`).
// - Zombies are found by scanning /proc/<pid>/stat (state Z, ppid = us; src/os/proc.ts).
// - `isTracked` knows the supervisor's own children, not those a config hook starts in this process
//   (Bun.spawn, node:child_process): one reaped behind Bun's back failed the hook with ECHILD. So a
//   zombie is reaped only once it has stayed a zombie for ZOMBIE_GRACE_MS: Bun waits for each of
//   its children on the event-loop turn after it exits, whoever spawned it, so a zombie that outlives
//   the grace is nobody's but ours (an orphan). Orphans wait that much longer; a zombie costs a pid.
// - When: on SIGCHLD (coalesced into one scan per event-loop turn: a burst of exits costs one scan)
//   plus a slow interval, because signals coalesce and a SIGCHLD can arrive while a scan is running.
// - `prctl(PR_SET_CHILD_SUBREAPER, 1)`, so orphans come to us even when we are not PID 1 (systemd,
//   a shell, `docker run --init` with us underneath): the app's orphans are then ours to reap and do
//   not escape the supervisor's process tree.
// - bun:ffi is loaded lazily, on start: importing it at top level added ~15 ms to every start-up.

import type { Library } from "bun:ffi";
import { openLibc } from "./libc.ts";
import { childProcesses } from "./proc.ts";

export interface ReaperOptions {
  /**
   * True for every pid this process spawned with Bun.spawn (workers, --pre-start, anything else), from
   * the moment Bun.spawn returns until its `exited` promise has resolved. Bun reaps those itself; if
   * we reaped one first, Bun would lose its exit status.
   */
  isTracked: (pid: number) => boolean;
  /** Told about each orphan reaped: its pid and its exit code, or the signal that killed it. */
  onReap?: (pid: number, status: WaitStatus) => void;
  /** Also become a child subreaper (default true). Needless but harmless as PID 1. */
  subreaper?: boolean;
  /** The slow safety-net scan, in ms (default RESCAN_MS). */
  intervalMs?: number;
  /** How long a zombie must stay one before we reap it, in ms (default ZOMBIE_GRACE_MS). */
  graceMs?: number;
}

export type WaitStatus = { code: number; signal: null } | { code: null; signal: number };

export interface Reaper {
  /** Scan now and reap the zombies that have served their grace; returns the pids reaped. The SIGCHLD
   * handler and the interval call this. */
  reapNow(): number[];
  stop(): void;
}

/**
 * A safety net only: SIGCHLD does the work. Slow, because a scan reads every /proc/<pid>/stat
 * (about 30 µs each, docs/DESIGN.md), and a zombie costs nothing but a pid while it waits.
 */
export const RESCAN_MS = 5_000;

/** Far above the time Bun takes to wait for a child of its own (one event-loop turn). */
export const ZOMBIE_GRACE_MS = 500;

/** Start reaping orphans. Linux only: elsewhere (macOS) it returns a reaper that does nothing. */
export function startReaper(options: ReaperOptions): Reaper {
  if (process.platform !== "linux") return { reapNow: () => [], stop() {} };
  const libc = loadLibc();
  if (options.subreaper ?? true) setChildSubreaper(libc);
  const status = new Int32Array(1);
  const graceMs = options.graceMs ?? ZOMBIE_GRACE_MS;
  /** When each untracked zombie was first seen: it is reaped once it has stayed a zombie for graceMs. */
  const firstSeen = new Map<number, number>();
  let recheck: Timer | undefined;

  const reapNow = (): number[] => {
    const reaped: number[] = [];
    const now = performance.now();
    const zombies = new Set(zombieChildren(process.pid));
    for (const pid of firstSeen.keys()) if (!zombies.has(pid)) firstSeen.delete(pid);
    let waiting = false;
    for (const pid of zombies) {
      if (options.isTracked(pid)) continue;
      const since = firstSeen.get(pid) ?? now;
      firstSeen.set(pid, since);
      if (now - since < graceMs) {
        waiting = true;
        continue;
      }
      // WNOHANG: if it is somehow not ours or not dead after all, return at once rather than block.
      firstSeen.delete(pid);
      if (libc.symbols.waitpid(pid, status, WNOHANG) !== pid) continue;
      reaped.push(pid);
      options.onReap?.(pid, decodeWaitStatus(status[0] ?? 0));
    }
    // Look again when the youngest has served its grace, not only at the next slow scan.
    if (waiting && !recheck) {
      recheck = setTimeout(() => {
        recheck = undefined;
        reapNow();
      }, graceMs + 10);
      recheck.unref();
    }
    return reaped;
  };

  let pending = false;
  const onSigchld = () => {
    if (pending) return;
    pending = true;
    // One scan for a burst of exits (a rolling restart, a crash of all workers), not one per signal.
    setImmediate(() => {
      pending = false;
      reapNow();
    });
  };
  process.on("SIGCHLD", onSigchld);
  const timer = setInterval(reapNow, options.intervalMs ?? RESCAN_MS);
  timer.unref();
  reapNow(); // orphans that arrived before we started

  return {
    reapNow,
    stop() {
      process.off("SIGCHLD", onSigchld);
      clearInterval(timer);
      clearTimeout(recheck);
    },
  };
}

/** Make orphaned descendants come to us instead of PID 1. Linux only; throws if the kernel refuses. */
export function setChildSubreaper(libc: Libc = loadLibc()): void {
  if (libc.symbols.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) !== 0) {
    throw new Error("prctl(PR_SET_CHILD_SUBREAPER) failed");
  }
}

/** Pids of zombies whose parent is `parent`, from /proc. */
export function zombieChildren(parent: number): number[] {
  return childProcesses(parent)
    .filter((child) => child.state === "Z")
    .map((child) => child.pid);
}

/** A wait(2) status word: exit code when WIFEXITED, else the terminating signal's number. */
export function decodeWaitStatus(raw: number): WaitStatus {
  const signal = raw & 0x7f;
  return signal === 0 ? { code: (raw >> 8) & 0xff, signal: null } : { code: null, signal };
}

// --- internal ---

const WNOHANG = 1;
const PR_SET_CHILD_SUBREAPER = 36;

const SYMBOLS = {
  waitpid: { args: ["i32", "ptr", "i32"], returns: "i32" },
  // prctl is variadic; on x86-64 and aarch64 Linux, integer arguments pass the same either way.
  prctl: { args: ["i32", "u64", "u64", "u64", "u64"], returns: "i32" },
} as const;

type Libc = Library<typeof SYMBOLS>;
let cached: Libc | undefined;

function loadLibc(): Libc {
  cached ??= openLibc(SYMBOLS, "the orphan reaper");
  return cached;
}
