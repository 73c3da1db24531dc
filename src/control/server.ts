// The control socket: HTTP over a Unix socket that only this user can reach (socket 0600 in a
// 0700 directory). It asks ControlActions and answers with JSON; every action answers when done.
//   GET /status → Snapshot     POST /reload, POST /scale {workers, relative}, POST /stop → ActionResult
//   POST /upgrade, POST /signal {signal}, POST /successor {pid, version} (the new supervisor of an
//   upgrade, src/runtime/upgrade.ts) → ActionResult

import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import { resolve } from "node:path";
import { bootError, ExitCode, SupervisorError, usageError } from "../core/exit-codes.ts";
import { checkSocketPathLength, prepareSocketDir } from "./paths.ts";
import type { ActionResult, ControlActions, Snapshot } from "./types.ts";

/** How long a probe of an existing socket may take before it counts as "somebody is there". */
export const PROBE_TIMEOUT_MS = 1_000;
/** On stop, in-flight answers (a `stop` being answered) get this long to be written before we cut. */
export const DRAIN_TIMEOUT_MS = 2_000;

export interface ControlServer {
  /** The socket's absolute path. */
  path: string;
  /** Stop listening, let in-flight answers finish (up to DRAIN_TIMEOUT_MS), remove the socket. */
  stop(): Promise<void>;
}

/**
 * Listen on `path` (see defaultControlPath). Throws SupervisorError: 3 when a live supervisor holds
 * the socket, 2 for a path that cannot be used (too long, not a socket), 1 for an unsafe directory.
 * `env` only decides which directory is this user's control directory (strictly checked).
 */
export async function startControlServer(
  path: string,
  actions: ControlActions,
  env: Record<string, string | undefined> = process.env,
): Promise<ControlServer> {
  const socketPath = resolve(path);
  checkSocketPathLength(socketPath);
  prepareSocketDir(socketPath, env);
  await clearStaleSocket(socketPath);
  const server = listen(socketPath, actions);
  const inode = lstatSync(socketPath).ino;
  let stopping: Promise<void> | undefined;
  return {
    path: socketPath,
    stop: () => {
      stopping ??= stopServer(server, socketPath, inode);
      return stopping;
    },
  };
}

// --- internal ---

type Server = ReturnType<typeof Bun.serve>;

function listen(path: string, actions: ControlActions): Server {
  // Bind with umask 177 so the socket is 0600 from its first moment, not after a chmod.
  const umask = process.umask(0o177);
  try {
    const server = Bun.serve({
      unix: path,
      development: false,
      fetch: (req, srv) => handle(req, srv, actions),
      error: (error) => json(500, { ok: false, message: `internal error: ${error.message}` }),
    });
    chmodSync(path, 0o600);
    return server;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw liveSocket(path, null);
    throw new SupervisorError(`cannot listen on control socket ${path}: ${code ?? error}`, ExitCode.RUNTIME);
  } finally {
    process.umask(umask);
  }
}

async function handle(req: Request, server: Server, actions: ControlActions): Promise<Response> {
  const { pathname } = new URL(req.url);
  const method = ROUTES[pathname];
  if (!method) return json(404, { ok: false, message: `no such control route: ${pathname}` });
  if (req.method !== method) {
    return json(405, { ok: false, message: `${pathname} takes ${method}` }, { allow: method });
  }
  // Actions answer when done (a reload can take many graceful timeouts): no idle cut-off for them.
  if (method === "POST") server.timeout(req, 0);
  let result: ActionResult;
  switch (pathname) {
    case "/status":
      return json(200, actions.snapshot());
    case "/reload":
      result = await actions.reload();
      break;
    case "/scale": {
      const body = await readScale(req);
      if (typeof body === "string") return json(400, { ok: false, message: body });
      result = await actions.scale(body.workers, body.relative);
      break;
    }
    case "/upgrade":
      result = await actions.upgrade();
      break;
    case "/signal": {
      const body = (await req.json().catch(() => null)) as { signal?: unknown } | null;
      const signal = body?.signal;
      if (signal !== "SIGUSR1" && signal !== "SIGUSR2") {
        return json(400, { ok: false, message: 'body must be JSON {"signal": "SIGUSR1" | "SIGUSR2"}' });
      }
      result = await actions.signal(signal);
      break;
    }
    case "/successor": {
      const body = (await req.json().catch(() => null)) as { pid?: unknown; version?: unknown } | null;
      if (typeof body?.pid !== "number" || typeof body.version !== "string") {
        return json(400, { ok: false, message: 'body must be JSON {"pid": <number>, "version": <string>}' });
      }
      result = await actions.successorReady(body.pid, body.version);
      break;
    }
    default: // "/stop"
      result = await actions.stop();
  }
  return json(result.ok ? 200 : 409, result);
}

const ROUTES: Record<string, "GET" | "POST"> = {
  "/status": "GET",
  "/reload": "POST",
  "/scale": "POST",
  "/stop": "POST",
  "/upgrade": "POST",
  "/signal": "POST",
  "/successor": "POST",
};

/** The scale request's body, or what is wrong with it. */
async function readScale(req: Request): Promise<{ workers: number; relative: boolean } | string> {
  const usage = 'body must be JSON {"workers": <whole number>, "relative": <boolean>}';
  let body: unknown;
  try {
    body = await req.json();
  } catch {
    return usage;
  }
  if (typeof body !== "object" || body === null) return usage;
  const { workers, relative = false } = body as { workers?: unknown; relative?: unknown };
  if (typeof workers !== "number" || !Number.isSafeInteger(workers) || typeof relative !== "boolean") {
    return usage;
  }
  return { workers, relative };
}

function json(status: number, body: ActionResult | Snapshot, headers: Record<string, string> = {}): Response {
  return Response.json(body, { status, headers });
}

/**
 * A socket file left by a supervisor that died without cleaning up is replaced; one that somebody
 * answers on is refused (another supervisor, probably for the same port); a non-socket is never
 * deleted.
 */
async function clearStaleSocket(path: string): Promise<void> {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch {
    return; // nothing there
  }
  if (!st.isSocket()) throw usageError(`control socket path exists and is not a socket: ${path}`);
  try {
    const res = await fetch("http://localhost/status", {
      unix: path,
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    const snapshot = (await res.json().catch(() => null)) as Partial<Snapshot> | null;
    throw liveSocket(path, typeof snapshot?.pid === "number" ? snapshot.pid : null);
  } catch (error) {
    if (error instanceof SupervisorError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ECONNREFUSED" || code === "ENOENT") {
      try {
        unlinkSync(path);
      } catch (unlinkError) {
        if ((unlinkError as NodeJS.ErrnoException).code !== "ENOENT") throw unlinkError;
      }
      return;
    }
    // Connected but no answer in time, or refused to us: somebody is there, leave it alone.
    throw liveSocket(path, null, code ?? (error as Error).name);
  }
}

function liveSocket(path: string, pid: number | null, why?: string): SupervisorError {
  const who = pid === null ? "something" : `a supervisor (pid ${pid})`;
  const detail = why ? ` (${why})` : "";
  return bootError(
    `control socket ${path} is in use: ${who} is listening on it${detail}; stop it first or pass --control <path>`,
  );
}

async function stopServer(server: Server, path: string, inode: number): Promise<void> {
  let timer: Timer | undefined;
  const deadline = new Promise<void>((done) => {
    timer = setTimeout(done, DRAIN_TIMEOUT_MS);
  });
  await Promise.race([server.stop(false), deadline]);
  clearTimeout(timer);
  await server.stop(true);
  // Remove the socket unless it is already gone or is no longer ours (replaced by someone since).
  try {
    if (lstatSync(path).ino === inode) unlinkSync(path);
  } catch {
    // already gone
  }
}
