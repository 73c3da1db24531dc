// Upgrading the supervisor itself (USR2, `supervisor upgrade`): the process work. When to start,
// stop or hand over is the core's decision (src/core/lifecycle.ts); this module only does it.
//
// The old supervisor starts the binary now at its own path (a new release renamed over the old file)
// with its own arguments, working directory and environment, plus SUCCESSOR_ENV naming its pid. That
// new supervisor starts its workers on the same port while the old one serves (SO_REUSEPORT: no file
// descriptor is handed over). Once they are all ready it tells the old one over the old one's control
// socket; the old one releases its admin port and its port claim, answers, drains its workers and
// exits 0. The new one then takes the port claim, the pidfile and the admin port at once, and the
// control socket path once the old one is gone (the old one keeps it until then, to answer
// `supervisor upgrade` when it is done).
//
// The successor is a plain child of the old supervisor: same process group and session (a terminal's
// Ctrl-C still reaches it, as it reached the old one), stdout and stderr inherited (logs go on in the
// same place), stdin closed (a background process group that reads the terminal gets SIGTTIN, which
// would scale us). Nothing makes it die with its parent: only workers watch their channel to it, and
// the successor is the parent of its own workers. When the old one exits it is reparented to init
// (or a subreaper), as Gunicorn's re-exec'd master is.

import { accessSync, constants, readFileSync } from "node:fs";
import pkg from "../../package.json" with { type: "json" };
import { controlClient } from "../control/client.ts";
import { describeExit } from "../core/format.ts";
import { trackChild, untrackChild } from "../os/children.ts";
import { processExists } from "../os/pidfile.ts";
import type { Logger } from "./log.ts";
import type { SuccessorHost } from "./loop.ts";
import { sendOnce } from "./notify.ts";

/** Set by the old supervisor for the one it starts: "you are the successor of pid N". */
export const SUCCESSOR_ENV = "SUPERVISOR_SUCCESSOR_OF";

/** How this process was started, captured before anything changes it (--chdir, variables removed). */
export interface Launch {
  argv: string[];
  cwd: string;
  env: Record<string, string | undefined>;
}

export function captureLaunch(): Launch {
  // Compiled, Bun.main is inside the binary ("/$bunfs/..."): the binary itself is the command.
  // From source, the same `bun src/cli.ts ...` command line.
  const compiled = Bun.main.startsWith("/$bunfs/") || Bun.main.includes("~BUN");
  const args = process.argv.slice(2);
  const argv = compiled ? [process.execPath, ...args] : [process.execPath, Bun.main, ...args];
  const env = { ...process.env };
  delete env[SUCCESSOR_ENV];
  return { argv, cwd: process.cwd(), env };
}

/**
 * The old supervisor's pid when we are its successor, else undefined. The marker is believed only
 * from our own parent (Bun reads ppid once, at start-up: it is the process that started us), and is
 * removed from our environment so that neither our workers nor our own successor inherit it.
 */
export function predecessorPid(env: Record<string, string | undefined> = process.env): number | undefined {
  const raw = env[SUCCESSOR_ENV];
  delete env[SUCCESSOR_ENV];
  const pid = Number(raw);
  return raw !== undefined && Number.isSafeInteger(pid) && pid > 1 && pid === process.ppid ? pid : undefined;
}

/**
 * Started by systemd as a service (systemd, pid 1, is our parent and set INVOCATION_ID) that gave us
 * no NOTIFY_SOCKET: systemd cannot hear `MAINPID=`, so an upgrade would end the service.
 */
export function systemdWithoutNotify(env: Record<string, string | undefined>, ppid = process.ppid): boolean {
  if (!env.INVOCATION_ID || env.NOTIFY_SOCKET || ppid !== 1) return false;
  try {
    return readFileSync("/proc/1/comm", "utf8").trim() === "systemd";
  } catch {
    return false;
  }
}

/** The old supervisor's side: start, stop and hand over to the new one. */
export function successorHost(
  launch: Launch,
  graceMs: number,
  release: (pid: number) => Promise<void>,
  logger: Logger,
): SuccessorHost {
  let proc: ReturnType<typeof Bun.spawn> | undefined;
  return {
    start(exited) {
      const [command = ""] = launch.argv;
      try {
        accessSync(command, constants.X_OK);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        throw new Error(`${command} is ${code === "ENOENT" ? "missing" : `not executable (${code})`}`);
      }
      const child = Bun.spawn(launch.argv, {
        cwd: launch.cwd,
        env: { ...launch.env, [SUCCESSOR_ENV]: String(process.pid) },
        stdio: ["ignore", "inherit", "inherit"],
      });
      proc = child;
      trackChild(child.pid); // the --init reaper leaves its exit status to Bun
      logger.info(`upgrade: started ${command} as pid ${child.pid}`);
      void child.exited.then(() => {
        untrackChild(child.pid);
        const signal = child.signalCode === null ? null : String(child.signalCode);
        exited(describeExit(child.exitCode, signal));
      });
      return child.pid;
    },
    stop(pid) {
      if (proc?.pid !== pid) return;
      const child = proc;
      child.kill("SIGTERM");
      // A successor stuck before its own signal handling, or its drain: no process is left behind.
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      void child.exited.then(() => clearTimeout(timer));
    },
    async handOver(pid) {
      try {
        await release(pid);
      } catch (error) {
        logger.warn(`upgrade: releasing for pid ${pid}: ${error instanceof Error ? error.message : error}`);
      }
    },
  };
}

/** The new supervisor's side: tell the old one that every worker is ready; its answer says whether
 * we take over (it has released its admin port and port claim by then). */
export async function announceReady(controlPath: string): Promise<{ ok: boolean; message: string }> {
  try {
    return await controlClient(controlPath).successor(process.pid, pkg.version);
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
}

/** Resolves once `pid` is gone (the old supervisor: not our child, so polled), or after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (processExists(pid)) {
    if (performance.now() > deadline) return false;
    await Bun.sleep(25);
  }
  return true;
}

/**
 * systemd (Type=notify): the main pid moves to the successor. The old supervisor, still the main
 * process, says `MAINPID=<new>` at the hand-over (accepted under the default NotifyAccess=main);
 * the new one then says `MAINPID=<own>` and `READY=1`. Best effort: a failure costs only the message.
 */
export function sendMainPid(env: Record<string, string | undefined>, pid: number): void {
  const address = env.NOTIFY_SOCKET;
  if (!address || process.platform !== "linux") return;
  const message = pid === process.pid ? `MAINPID=${pid}\nREADY=1` : `MAINPID=${pid}`;
  try {
    sendOnce(address, message);
  } catch {
    // no libc to load, or systemd gone: nothing to tell
  }
}
