// Find a running supervisor's control socket and talk to it. With neither --port nor --control, the
// one supervisor this user runs is found by asking every socket in the control directory; several
// are an error that lists them.
// Exit codes: 2 (USAGE) when there is nothing to talk to or the choice is ambiguous — the command
// line must change; 1 (RUNTIME) when a supervisor was found but the conversation failed
// (permission denied, connection lost, an action that did not succeed).

import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { ExitCode, SupervisorError, usageError } from "../core/exit-codes.ts";
import { assertPrivateDir, controlDir, defaultControlPath, portOfSocketName } from "./paths.ts";
import type { ActionResult, Snapshot } from "./types.ts";

/** How long each socket in the control directory gets to answer during discovery. */
export const DISCOVERY_TIMEOUT_MS = 2_000;

export interface Target {
  port?: number;
  control?: string;
  /** Found through the pid in this file (another user's supervisor, e.g. a system service). */
  pidfile?: string;
}

export interface ControlClient {
  path: string;
  status(): Promise<Snapshot>;
  reload(): Promise<ActionResult>;
  scale(workers: number, relative: boolean): Promise<ActionResult>;
  stop(): Promise<ActionResult>;
  upgrade(): Promise<ActionResult>;
  signal(name: "SIGUSR1" | "SIGUSR2"): Promise<ActionResult>;
  successor(pid: number, version: string): Promise<ActionResult>;
}

export interface FoundSupervisor {
  path: string;
  snapshot: Snapshot;
}

type Env = Record<string, string | undefined>;

/** A client for the supervisor named by `target`, or the only one running when it names none. */
export async function connectControl(target: Target, env: Env = process.env): Promise<ControlClient> {
  const given = [target.port, target.control, target.pidfile].filter((t) => t !== undefined).length;
  if (given > 1) throw usageError("pass one of --port, --control and --pidfile, not several");
  if (target.control !== undefined) return controlClient(resolve(target.control));
  if (target.pidfile !== undefined) {
    const { controlSocketFromPidfile } = await import("./by-pid.ts");
    return controlClient(controlSocketFromPidfile(resolve(target.pidfile)));
  }
  if (target.port !== undefined) {
    const path = defaultControlPath(target.port, env);
    assertPrivateDir(controlDir(env));
    return controlClient(path);
  }
  const dir = controlDir(env);
  const found = await listSupervisors(dir);
  const only = found[0];
  if (found.length === 1 && only) return controlClient(only.path);
  if (found.length === 0) {
    throw usageError(
      `no running supervisor found (looked in ${dir}; another user's, e.g. a system service: pass --pidfile <its pidfile>)`,
    );
  }
  const list = found.map((f) => `port ${portOf(f)} (pid ${f.snapshot.pid}, ${f.path})`).join("; ");
  throw usageError(
    `${found.length} supervisors are running: ${list}; pass --port <port> or --control <path> to pick one`,
  );
}

/** Every supervisor answering on a socket in `dir`, by port. Stale sockets are skipped. */
export async function listSupervisors(dir: string): Promise<FoundSupervisor[]> {
  if (assertPrivateDir(dir) === "missing") return [];
  const names = readdirSync(dir).filter((name) => name.endsWith(".sock"));
  const answers = await Promise.all(
    names.map(async (name) => {
      const path = join(dir, name);
      try {
        return { path, snapshot: await request<Snapshot>(path, "GET", "/status", DISCOVERY_TIMEOUT_MS) };
      } catch {
        return null;
      }
    }),
  );
  return answers.filter((a): a is FoundSupervisor => a !== null).sort((a, b) => portOf(a) - portOf(b));
}

/** A client for the socket at `path`; nothing is sent until a method is called. */
export function controlClient(path: string): ControlClient {
  return {
    path,
    status: () => request<Snapshot>(path, "GET", "/status"),
    reload: () => request<ActionResult>(path, "POST", "/reload"),
    scale: (workers, relative) =>
      request<ActionResult>(path, "POST", "/scale", undefined, { workers, relative }),
    stop: () => request<ActionResult>(path, "POST", "/stop"),
    upgrade: () => request<ActionResult>(path, "POST", "/upgrade"),
    signal: (signal) => request<ActionResult>(path, "POST", "/signal", undefined, { signal }),
    successor: (pid, version) =>
      request<ActionResult>(path, "POST", "/successor", undefined, { pid, version }),
  };
}

// --- internal ---

function portOf(found: FoundSupervisor): number {
  const fromAddress = Number(/:(\d+)\/?$/.exec(found.snapshot.address)?.[1]);
  return fromAddress || (portOfSocketName(found.path.slice(found.path.lastIndexOf("/") + 1)) ?? 0);
}

/** One request; actions wait as long as they take (timeoutMs undefined). */
async function request<T>(
  path: string,
  method: "GET" | "POST",
  route: string,
  timeoutMs?: number,
  body?: unknown,
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`http://localhost${route}`, {
      unix: path,
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
      ...(timeoutMs === undefined ? { timeout: false } : { signal: AbortSignal.timeout(timeoutMs) }),
    });
  } catch (error) {
    throw connectError(path, error);
  }
  let answer: unknown;
  try {
    answer = await res.json();
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw connectError(path, error);
    throw runtimeError(
      `unexpected answer from ${path} (HTTP ${res.status}): not a supervisor control socket?`,
    );
  }
  if (res.status >= 400 && res.status !== 409) {
    const message = (answer as Partial<ActionResult>)?.message ?? `HTTP ${res.status}`;
    throw runtimeError(`the supervisor refused the request: ${message}`);
  }
  return answer as T;
}

function connectError(path: string, error: unknown): SupervisorError {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case "ENOENT":
      return usageError(`no running supervisor at ${path} (no such socket)`);
    case "ECONNREFUSED":
      return usageError(`no supervisor is answering at ${path} (a socket left by one that exited?)`);
    case "EACCES":
    case "EPERM":
      return runtimeError(
        `permission denied on control socket ${path}: it belongs to another user (run the command as that user)`,
      );
    case "ECONNRESET":
      return runtimeError(`the supervisor at ${path} closed the connection before answering (did it exit?)`);
    default: {
      const name = (error as Error)?.name;
      if (name === "TimeoutError") return runtimeError(`the supervisor at ${path} did not answer in time`);
      return runtimeError(`cannot reach the supervisor at ${path}: ${code ?? String(error)}`);
    }
  }
}

const runtimeError = (message: string) => new SupervisorError(message, ExitCode.RUNTIME);
