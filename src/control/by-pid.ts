// Finding a supervisor's control socket from its pid (`--pidfile`), for root or an operator reaching
// a supervisor that runs as a service user: a system service has no XDG_RUNTIME_DIR, so its socket
// is in the service user's directory (/tmp/supervisor-<uid>/), which root's own lookup never visits,
// and under systemd's PrivateTmp= or in a container that /tmp is not even ours to see.
// The kernel knows: the process's descriptors name socket inodes (/proc/<pid>/fd), its network
// namespace lists the bound unix sockets with their state (/proc/<pid>/net/unix), and its root
// directory is reachable at /proc/<pid>/root whatever its mount namespace.

import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { ExitCode, SupervisorError, usageError } from "../core/exit-codes.ts";
import { readPidfile } from "../os/pidfile.ts";
import { MAX_SOCKET_PATH_BYTES } from "./paths.ts";

/** __SO_ACCEPTCON in /proc/net/unix's Flags column: a listening socket. */
const LISTENING = 0x10000;

/** The connectable path of the control socket of the supervisor whose pid is in `pidfile`. */
export function controlSocketFromPidfile(pidfile: string): string {
  let pid: ReturnType<typeof readPidfile>;
  try {
    pid = readPidfile(pidfile);
  } catch (error) {
    throw usageError(`cannot read pidfile ${pidfile}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
  if (pid === null) throw usageError(`no running supervisor: pidfile ${pidfile} does not exist or is empty`);
  if (pid === "not-a-pidfile") throw usageError(`pidfile ${pidfile} does not hold a pid`);
  return controlSocketOfPid(pid, pidfile);
}

export function controlSocketOfPid(pid: number, shownAs = `pid ${pid}`): string {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT")
      throw usageError(`no running supervisor: ${shownAs} names pid ${pid}, which is not running`);
    throw new SupervisorError(
      `cannot look at pid ${pid}'s sockets (${code}): run this as root or as the user it runs as`,
      ExitCode.RUNTIME,
    );
  }
  const inodes = new Set<string>();
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1] as string);
    } catch {
      // closed meanwhile
    }
  }
  const paths = listeningUnixSockets(readFileSync(`/proc/${pid}/net/unix`, "utf8"))
    .filter((s) => inodes.has(s.inode))
    .map((s) => s.path);
  const path = paths.find((p) => p.endsWith(".sock")) ?? paths[0];
  if (!path) {
    throw usageError(
      `pid ${pid} (${shownAs}) has no control socket: was its /tmp read-only? (its start-up log says; run it with --control <path> on a writable volume)`,
    );
  }
  // Through its root: a private /tmp (PrivateTmp=, a container) hides the path from us otherwise.
  const throughRoot = `/proc/${pid}/root${path}`;
  return Buffer.byteLength(throughRoot) <= MAX_SOCKET_PATH_BYTES ? throughRoot : path;
}

/** /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path"; the listening ones with a path. */
export function listeningUnixSockets(text: string): { inode: string; path: string }[] {
  return text
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length >= 8 && (Number.parseInt(f[3] as string, 16) & LISTENING) !== 0)
    .filter((f) => (f[7] as string).startsWith("/"))
    .map((f) => ({ inode: f[6] as string, path: f.slice(7).join(" ") }));
}
