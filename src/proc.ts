// Reading other processes from /proc (Linux). Never on a request path: on heartbeats and status reads.

import { readFileSync } from "node:fs";

/** A process's resident memory in bytes, or undefined where unknown (not Linux, process gone). */
export function residentBytes(pid: number | undefined): number | undefined {
  if (pid === undefined || process.platform !== "linux") return undefined;
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined; // exited meanwhile
  }
}
