// Reading processes from /proc (Linux): the one place that parses /proc/<pid>/stat and scans the
// process table. Used by the reaper (zombies), the pidfile (a zombie owns nothing), status and
// --max-memory (RSS), and by the tests and scripts (workers, process groups, CPU). Never on a request
// path.

import { readdirSync, readFileSync } from "node:fs";
import { isDigits, lineAfter, words } from "../core/text.ts";

export interface ProcStat {
  pid: number;
  /** R, S, D, Z (zombie), T, ... */
  state: string;
  ppid: number;
  /** Process group. */
  pgrp: number;
  /** CPU time in clock ticks (1/100 s on Linux). */
  utime: number;
  stime: number;
  /** Start time in clock ticks after boot. */
  starttime: number;
}

/** Fields of a /proc/<pid>/stat line; the command name may hold spaces and parentheses. */
export function parseStat(pid: number, text: string): ProcStat | undefined {
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const [state, ppid] = rest;
  if (state === undefined || ppid === undefined) return undefined;
  return {
    pid,
    state,
    ppid: Number(ppid),
    pgrp: Number(rest[2]),
    utime: Number(rest[11]),
    stime: Number(rest[12]),
    starttime: Number(rest[19]),
  };
}

/** undefined when the process is gone (exited and reaped). */
export function readStat(pid: number): ProcStat | undefined {
  try {
    return parseStat(pid, readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

/** Every process this one can see, zombies included: one scan of /proc. */
export function processTable(): ProcStat[] {
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  const table: ProcStat[] = [];
  for (const entry of entries) {
    const first = entry.charCodeAt(0);
    if (first < 48 || first > 57) continue; // not a pid directory
    const stat = readStat(Number(entry));
    if (stat) table.push(stat);
  }
  return table;
}

// Every child of `parent`, zombies included (state "Z"). The per-task `children` files would be
// cheaper but need CONFIG_PROC_CHILDREN, absent on this project's kernel.
export function childProcesses(parent: number): ProcStat[] {
  return processTable().filter((stat) => stat.ppid === parent);
}

/** Children, their children and so on, breadth first, from one scan. */
export function descendants(root: number, table = processTable()): ProcStat[] {
  const found: ProcStat[] = [];
  const parents = [root];
  while (parents.length > 0) {
    const parent = parents.shift() as number;
    for (const stat of table) {
      if (stat.ppid !== parent) continue;
      found.push(stat);
      parents.push(stat.pid);
    }
  }
  return found;
}

/** Alive and not a zombie. */
export const isAlive = (pid: number) => {
  const state = readStat(pid)?.state;
  return state !== undefined && state !== "Z";
};

/** A process's resident memory in bytes, or undefined where unknown (not Linux, process gone). */
export function residentBytes(pid: number | undefined): number | undefined {
  if (pid === undefined || process.platform !== "linux") return undefined;
  try {
    const [kb, unit] = words(lineAfter(readFileSync(`/proc/${pid}/status`, "utf8"), "VmRSS:") ?? "");
    return kb !== undefined && isDigits(kb) && unit === "kB" ? Number(kb) * 1024 : undefined;
  } catch {
    return undefined; // exited meanwhile
  }
}

/** RSS from /proc/<pid>/statm: one short line, much less for the kernel to format than `status`, for
 * --max-memory's frequent samples. undefined where unknown (not Linux, process gone). */
export function sampleResidentBytes(pid: number): number | undefined {
  if (process.platform !== "linux") return undefined;
  try {
    const pages = Number(readFileSync(`/proc/${pid}/statm`, "latin1").split(" ")[1]);
    return Number.isFinite(pages) ? pages * pageBytes() : undefined;
  } catch {
    return undefined; // exited meanwhile
  }
}

let pageSize: number | undefined;
/** statm counts pages; JavaScript cannot ask sysconf, so compare our own RSS in both files, once. */
function pageBytes(): number {
  if (pageSize !== undefined) return pageSize;
  pageSize = 4096;
  try {
    const pages = Number(readFileSync("/proc/self/statm", "latin1").split(" ")[1]);
    const bytes = residentBytes(process.pid);
    if (pages > 0 && bytes) pageSize = 2 ** Math.round(Math.log2(bytes / pages));
  } catch {
    // keep 4 KiB, the page size of nearly every Linux machine
  }
  return pageSize;
}
