// A directory of files that the supervisor and its workers share: --admin's request metrics (mapped
// by both, Bun.mmap) and the workers' beat files (rewritten by each worker, read by the supervisor).
// Under /dev/shm when there is one, so the pages are memory and never written to a disk.

import { chmodSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDigits } from "../core/text.ts";

/** A new directory under /dev/shm when there is one, else the temp directory (undefined: neither is
 * writable); its owner removes it. 0711: a worker running as another user (--user) can open its own
 * file by name, and nobody can list the others. */
export function makeSharedDir(): string | undefined {
  for (const base of ["/dev/shm", tmpdir()]) {
    try {
      removeStale(base);
      const dir = mkdtempSync(join(base, `supervisor-${process.pid}-`));
      chmodSync(dir, 0o711);
      return dir;
    } catch {
      // not there or not writable: try the next
    }
  }
  return undefined;
}

/** Directories of supervisors that died without cleaning up (SIGKILL): memory in /dev/shm until
 * removed. Only a dead pid's, and only what this user may remove. */
function removeStale(base: string): void {
  for (const name of readdirSync(base)) {
    const pid = pidOfSharedDir(name);
    if (!pid || pid === process.pid || isRunning(pid)) continue;
    try {
      rmSync(join(base, name), { recursive: true, force: true });
    } catch {
      // another user's: theirs to remove
    }
  }
}

/** "supervisor-<pid>-XXXXXX" (makeSharedDir's names) → the pid; 0 for any other name. */
function pidOfSharedDir(name: string): number {
  const [prefix, pid, rest] = name.split("-");
  return prefix === "supervisor" && isDigits(pid ?? "") && rest !== undefined ? Number(pid) : 0;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
