// `--pidfile <path>`: our pid in a file, for init scripts and monitors that signal us by pid.
// - Written atomically: a reader sees either no file or a whole pid, never an empty or half-written one.
// - A file left by a dead process (a crash, a SIGKILL, a container restart) is replaced.
// - A file naming a live process other than us refuses to start: two supervisors given the same
//   pidfile are almost certainly two copies of one service, and with SO_REUSEPORT the second would
//   silently share the port (docs/DESIGN.md).
// The refusal is exit code 2 (USAGE), not 3 (BOOT): nothing was started and the app never ran; the
// command line names a file that another running instance owns, so the fix is in how we were
// started (stop the other instance, or pass another path), just like a bad flag. 3 is kept for "the
// app itself cannot boot".
// Limit: a pid is only a number. If the recorded process died and an unrelated process later got the
// same pid, we refuse until that file is removed; the message names the pid so a human can check.

import { linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { SupervisorError, usageError } from "../core/exit-codes.ts";
import { isDigits } from "../core/text.ts";
import { readStat } from "./proc.ts";

/** Write our pid to `path`, or throw a SupervisorError (exit code 2) if a live process owns it;
 * `takingOverFrom`: the old supervisor of an upgrade, whose live pid we replace on purpose. */
export function writePidfile(path: string, takingOverFrom?: number): void {
  const temp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, `${process.pid}\n`, { mode: 0o644 });
  } catch (error) {
    throw usageError(`cannot write pidfile ${path}: ${describe(error)}`);
  }
  try {
    // link() creates `path` only if it does not exist: of two supervisors starting at once, one wins.
    try {
      linkSync(temp, path);
      return;
    } catch (error) {
      if (code(error) !== "EEXIST" && !LINK_UNSUPPORTED.has(code(error))) throw error;
    }
    const owner = readPidfile(path);
    if (owner === "not-a-pidfile") {
      throw usageError(`pidfile ${path} exists and does not hold a pid; not replacing it`);
    }
    if (owner !== null && owner !== process.pid && owner !== takingOverFrom && processExists(owner)) {
      throw usageError(`pidfile ${path} belongs to running process ${owner}; is another supervisor running?`);
    }
    // Stale (dead owner), empty, ours already, or a filesystem without hard links: replace atomically.
    renameSync(temp, path);
  } catch (error) {
    if (error instanceof SupervisorError) throw error;
    throw usageError(`cannot write pidfile ${path}: ${describe(error)}`);
  } finally {
    try {
      unlinkSync(temp);
    } catch {
      // renamed away, or never created
    }
  }
}

/**
 * Remove `path` if it still holds our pid; leave it alone if another process has since taken it
 * over (a second instance started after we lost it). Never throws: it runs on the way out.
 * Returns whether the file was removed.
 */
export function removePidfile(path: string): boolean {
  try {
    if (readPidfile(path) !== process.pid) return false;
    unlinkSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The pid in a pidfile; null if the file is missing or empty; "not-a-pidfile" for other content. */
export function readPidfile(path: string): number | null | "not-a-pidfile" {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if (code(error) === "ENOENT") return null;
    throw error;
  }
  const content = text.trim();
  if (content === "") return null;
  const pid = isDigits(content) ? Number(content) : Number.NaN;
  return Number.isSafeInteger(pid) && pid > 0 ? pid : "not-a-pidfile";
}

/** A process with this pid exists and is not a zombie (a zombie is dead, only not yet reaped). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to another user; that still owns the pidfile.
    if (code(error) !== "EPERM") return false;
  }
  // No /proc (macOS), or gone this instant: kill(pid, 0) said it exists.
  const state = readStat(pid)?.state;
  return state === undefined || state !== "Z";
}

// --- internal ---

/** link() errors of filesystems without hard links (some FUSE, vfat): fall back to rename. */
const LINK_UNSUPPORTED = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EXDEV"]);

const code = (error: unknown) => (error as NodeJS.ErrnoException | undefined)?.code ?? "";
const describe = (error: unknown) => (error instanceof Error ? error.message : String(error));
