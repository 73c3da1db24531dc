// Where control sockets live: one private directory per user, one socket per app port, e.g.
// $XDG_RUNTIME_DIR/supervisor-1000/3000.sock. The directory's mode is what keeps other users out
// (Linux also checks the socket's own mode, 0600, on connect), so a directory we did not create
// for ourselves is refused rather than used.

import { chmodSync, lstatSync, mkdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { ExitCode, SupervisorError, usageError } from "../core/exit-codes.ts";
import { isDigits } from "../core/text.ts";

type Env = Record<string, string | undefined>;

/** sun_path holds 108 bytes with its terminating NUL; a longer path cannot be bound at all. */
export const MAX_SOCKET_PATH_BYTES = 107;

/** This user's control directory: under $XDG_RUNTIME_DIR when set (per-user, tmpfs), else the temp dir. */
export function controlDir(env: Env = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  const base = runtime && isAbsolute(runtime) ? runtime : tmpdir();
  return join(base, `supervisor-${process.getuid?.() ?? "user"}`);
}

/** The control socket of the supervisor serving `port`. */
export function defaultControlPath(port: number, env: Env = process.env): string {
  return join(controlDir(env), `${port}.sock`);
}

/** The port a default socket name stands for ("3000.sock" → 3000), else null. */
export function portOfSocketName(name: string): number | null {
  const port = name.endsWith(".sock") ? name.slice(0, -".sock".length) : "";
  return isDigits(port) && port.length <= 5 ? Number(port) : null;
}

export function checkSocketPathLength(path: string): void {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw usageError(
      `control socket path is too long for a Unix socket (${Buffer.byteLength(path)} bytes, at most ${MAX_SOCKET_PATH_BYTES}): ${path} (pass a shorter --control path)`,
    );
  }
}

/**
 * Make sure the socket's directory exists and is safe to put a socket in. The default directory
 * must be ours and private (created 0700; an existing one owned by someone else, or writable by
 * group or others, is refused). An explicit directory is the caller's choice; it is only refused
 * when others could replace the socket in it (writable by them without the sticky bit, unlike /tmp).
 */
export function prepareSocketDir(socketPath: string, env: Env = process.env): void {
  const dir = dirname(socketPath);
  if (dir === controlDir(env)) {
    makeDir(dir, false);
    assertPrivateDir(dir);
    return;
  }
  makeDir(dir, true);
  const st = statSync(dir);
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
    throw unsafeDir(dir, "it is writable by other users (and not sticky)");
  }
}

/** Throw when `dir` exists but is not a private directory of ours; "missing" when it does not exist. */
export function assertPrivateDir(dir: string): "ok" | "missing" {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return "missing";
    throw new SupervisorError(
      `cannot read control directory ${dir}: ${(error as NodeJS.ErrnoException).code}`,
      ExitCode.RUNTIME,
    );
  }
  if (!st.isDirectory()) throw unsafeDir(dir, "it is not a directory");
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid)
    throw unsafeDir(dir, `it belongs to uid ${st.uid}, not to us (${uid})`);
  if ((st.mode & 0o022) !== 0) throw unsafeDir(dir, "it is writable by group or others");
  // Ours and not writable by others: tighten a readable one (someone's umask) rather than refuse it.
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
  return "ok";
}

// --- internal ---

function makeDir(dir: string, recursive: boolean): void {
  try {
    // The mode is filtered by the umask; assertPrivateDir sets it exactly afterwards.
    mkdirSync(dir, { mode: 0o700, recursive });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return;
    throw new SupervisorError(`cannot create control directory ${dir}: ${code}`, ExitCode.RUNTIME);
  }
}

function unsafeDir(dir: string, why: string): SupervisorError {
  return new SupervisorError(
    `refusing control directory ${dir}: ${why} (remove it, or pass --control <path>)`,
    ExitCode.RUNTIME,
  );
}
