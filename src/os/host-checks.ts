// The host settings that decide whether a deploy is clean, each with its fix in one line: reported in
// full by `supervisor check`, and in one start-up warning line when something is off. Only reads
// /proc and /sys (a few small files, well under a millisecond).

import { join } from "node:path";
import { lineAfter, words } from "../core/text.ts";
import { ancestors, cgroupEntries, readOrNull } from "./cgroup.ts";

export interface HostFinding {
  setting: string;
  ok: boolean;
  /** What was found, e.g. "0" or "hard limit 1024". */
  value: string;
  /** Why it matters (when not ok) or what it allows (when ok). */
  detail: string;
  /** The fix, in one line, when not ok. */
  fix?: string;
}

/** Measured with the compiled binary and a hello-world app (README, docs/DEPLOYMENT.md): the
 * supervisor's RSS, each worker's RSS before the app's own memory, Bun's listen backlog and the
 * supervisor's file descriptors (a base plus, per worker, its channel and its pidfd). */
export const SUPERVISOR_MB = 48;
export const WORKER_MB = 36;
export const BUN_LISTEN_BACKLOG = 512;
const SUPERVISOR_BASE_FDS = 16;
const FDS_PER_WORKER = 2;
/** Below this, a worker runs out of descriptors under a few thousand open connections. */
const COMFORTABLE_NOFILE = 4096;

type Read = (path: string) => string | null;

/** The findings for `workers` workers on this host (`read` is the file reader, for another root). */
export function hostFindings(workers: number, read: Read = readOrNull): HostFinding[] {
  // Every setting here is Linux's (/proc/sys, cgroups); elsewhere there is nothing to report.
  if (process.platform !== "linux") return [];
  return [migrateReq(read), somaxconn(read), openFiles(workers, read), memory(workers, read)].filter(
    (f): f is HostFinding => f !== undefined,
  );
}

/** One line naming what is off and how to fix it, or undefined when all is well. */
export function hostWarning(findings: HostFinding[]): string | undefined {
  const off = findings.filter((f) => !f.ok);
  if (off.length === 0) return undefined;
  return `host: ${off.map((f) => `${f.setting}=${f.value}: ${f.detail}, fix: ${f.fix}`).join("; ")} (see supervisor check)`;
}

/** The start-up line, only when something is off. `logger` is the supervisor's log (src/runtime/log.ts),
 * named by shape only: src/os sits below the runtime and imports nothing from it. */
export function warnAboutHost(workers: number, logger: { warn(message: string): void }): void {
  const line = hostWarning(hostFindings(workers));
  if (line) logger.warn(line);
}

/** `supervisor check`'s report: one line per setting. */
export function formatFindings(findings: HostFinding[]): string {
  return findings
    .map(
      (f) =>
        `${f.ok ? "ok  " : "warn"} ${f.setting}=${f.value}: ${f.detail}${f.fix ? `; fix: ${f.fix}` : ""}`,
    )
    .join("\n");
}

// --- internal ---

function migrateReq(read: Read): HostFinding {
  const text = read("/proc/sys/net/ipv4/tcp_migrate_req");
  const setting = "net.ipv4.tcp_migrate_req";
  if (text === null) {
    return {
      setting,
      ok: false,
      value: "unavailable",
      detail: "this kernel (before 5.14) resets connections queued on a stopping worker",
      fix: "a kernel from 5.14 on, with net.ipv4.tcp_migrate_req=1",
    };
  }
  const value = text.trim();
  return value === "1"
    ? { setting, ok: true, value, detail: "connections queued on a stopping worker move to the others" }
    : {
        setting,
        ok: false,
        value,
        detail: "connections queued on a stopping worker are reset during reloads and restarts",
        fix: "sysctl -w net.ipv4.tcp_migrate_req=1, per network namespace: a container takes --sysctl net.ipv4.tcp_migrate_req=1",
      };
}

function somaxconn(read: Read): HostFinding | undefined {
  const text = read("/proc/sys/net/core/somaxconn");
  if (text === null) return undefined;
  const value = Number(text.trim());
  const setting = "net.core.somaxconn";
  return value >= BUN_LISTEN_BACKLOG
    ? {
        setting,
        ok: true,
        value: String(value),
        detail: `Bun's listen backlog of ${BUN_LISTEN_BACKLOG} per worker applies`,
      }
    : {
        setting,
        ok: false,
        value: String(value),
        detail: `each worker's accept queue is cut from ${BUN_LISTEN_BACKLOG} to ${value}: a burst of new connections beyond it is dropped`,
        fix: `sysctl -w net.core.somaxconn=4096`,
      };
}

/** Bun raises its soft open-files limit to the hard one at start-up, so the hard limit is what counts. */
function openFiles(workers: number, read: Read): HostFinding | undefined {
  const limits = read("/proc/self/limits");
  // "Max open files            1024                 1048576              files"
  const [, value] = words(lineAfter(limits ?? "", "Max open files ") ?? "");
  if (value === undefined) return undefined;
  const hard = value === "unlimited" ? Number.POSITIVE_INFINITY : Number(value);
  const setting = "open files (hard limit)";
  const needed = SUPERVISOR_BASE_FDS + FDS_PER_WORKER * workers;
  const fix = "LimitNOFILE=65536 (systemd), --ulimit nofile=65536 (docker/podman), or ulimit -Hn 65536";
  if (hard < needed) {
    return {
      setting,
      ok: false,
      value,
      detail: `the supervisor itself needs ~${needed} for ${workers} workers`,
      fix,
    };
  }
  if (hard < COMFORTABLE_NOFILE) {
    return {
      setting,
      ok: false,
      value,
      detail: `each worker can hold at most ~${hard - 32} connections (one descriptor each)`,
      fix,
    };
  }
  return { setting, ok: true, value, detail: `each worker can hold ~${hard - 32} connections` };
}

function memory(workers: number, read: Read): HostFinding {
  const setting = "cgroup memory limit";
  const limit = cgroupMemoryLimit(read);
  const neededMb = SUPERVISOR_MB + WORKER_MB * workers;
  if (limit === null)
    return {
      setting,
      ok: true,
      value: "none",
      detail: `${workers} workers need ~${neededMb} MB before the app's own memory`,
    };
  const limitMb = Math.floor(limit / 2 ** 20);
  const value = `${limitMb} MB`;
  if (limitMb < neededMb) {
    const fit = Math.max(0, Math.floor((limitMb - SUPERVISOR_MB) / WORKER_MB));
    return {
      setting,
      ok: false,
      value,
      detail: `${workers} workers need ~${neededMb} MB (${SUPERVISOR_MB} MB supervisor + ${WORKER_MB} MB a worker) before the app's own memory`,
      fix: `-w ${Math.max(1, fit)}, or a memory limit of at least ${neededMb} MB plus the app's`,
    };
  }
  return {
    setting,
    ok: true,
    value,
    detail: `${workers} workers need ~${neededMb} MB before the app's own memory`,
  };
}

/** The tightest memory limit on our cgroup and its ancestors (v2 memory.max, v1
 * memory.limit_in_bytes), in bytes; null when none is set or none is readable. */
function cgroupMemoryLimit(read: Read): number | null {
  const self = read("/proc/self/cgroup") ?? "";
  const found: number[] = [];
  for (const { v2, controllers, path } of cgroupEntries(self)) {
    if (!v2 && !controllers.includes("memory")) continue;
    const mount = v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
    const file = v2 ? "memory.max" : "memory.limit_in_bytes";
    for (const dir of ancestors(mount, path)) {
      const value = Number(read(join(dir, file))?.trim() ?? "max");
      // v1 says "no limit" with a huge number (PAGE_COUNTER_MAX pages).
      if (Number.isFinite(value) && value > 0 && value < 2 ** 60) found.push(value);
    }
  }
  return found.length === 0 ? null : Math.min(...found);
}
