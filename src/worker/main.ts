// The worker: imports the user's app and serves it on the shared port with SO_REUSEPORT.
// The supervisor runs this file's code as an async function body under `bun -e` (the compiled binary
// acts as bun with BUN_BE_BUN=1; see host.ts), so the app resolves its packages, tsconfig, bunfig and
// .env exactly as under `bun app.ts`. Hence it must stand alone: type imports only, `require` for
// Bun's built-ins, no `import.meta`.

import type { Server } from "bun";
import type { WorkerConfig, WorkerMessage } from "./protocol.ts";

/** Exit code for "the app cannot boot" (Gunicorn's WORKER_BOOT_ERROR); the supervisor does not retry it at start-up. */
const BOOT_ERROR = 3;
/** While draining, every response tells keep-alive clients to close; this long before the listener
 * closes lets clients with requests in flight or queued see it (FACTS.md: 0 failed requests with
 * 200 ms–1 s, 9–20 failed with a bare `server.stop()`). */
const DRAIN_NOTICE_MS = 500;
/** When the supervisor itself is gone (SIGKILLed), in-flight requests get this long, then we exit:
 * the promise is that no worker outlives the supervisor by more than 1 s. */
const ORPHAN_GRACE_MS = 500;

const config = JSON.parse(process.env.SUPERVISOR_WORKER_CONFIG ?? "null") as WorkerConfig | null;
if (!config) {
  console.error("this is a supervisor worker; start it with `supervisor run <app>`");
  process.exit(2);
}
// The app and whatever it spawns see a plain environment, plus PORT and SUPERVISOR_WORKER_ID.
delete process.env.SUPERVISOR_WORKER_CONFIG;
delete process.env.SUPERVISOR_WORKER_JS;

let server: Server<unknown> | undefined;
let stopping = false;
/** Requests this worker has taken, counted in its handlers (a static `routes` Response is not counted). */
let served = 0;
const retireAfter =
  config.maxRequests > 0
    ? config.maxRequests + Math.floor(Math.random() * (config.maxRequestsJitter + 1))
    : 0;
const getppid = watchParent(config.parentPid);

// Terminal Ctrl-C reaches the whole process group; the supervisor decides and sends TERM.
process.on("SIGINT", () => {});
// USR1/USR2 are forwarded for the app's own handlers; without a listener they would kill the worker.
process.on("SIGUSR1", () => {});
process.on("SIGUSR2", () => {});
process.on("SIGTERM", () => {
  if (getppid() !== config.parentPid) return parentLost();
  void drain(config.gracefulTimeoutMs);
});
process.on("SIGQUIT", () => process.exit(0));

const app = await loadApp(config.entry);
try {
  server = Bun.serve(serveOptions(app, config));
} catch (error) {
  bootFailed(`cannot listen on ${config.host}:${config.port}: ${errorText(error)}`);
}
if (stopping) process.exit(0);
send({ type: "ready" });
// Sent from the event loop: a loop blocked by a handler sends none, and --timeout catches it.
setInterval(() => send({ type: "heartbeat", requests: served }), config.heartbeatMs);

// --- internal ---

type App = Record<string, unknown> & { fetch?: unknown; routes?: unknown };

async function loadApp(entry: string): Promise<App> {
  let mod: Record<string, unknown>;
  try {
    mod = await import(entry);
  } catch (error) {
    return bootFailed(errorText(error));
  }
  const app = mod.default as App | undefined;
  if (app && (typeof app === "object" || typeof app === "function")) {
    if (typeof app.fetch === "function" || isBunRoutes(app.routes)) return app;
  }
  const found =
    "default" in mod ? `its default export is ${describe(mod.default)}` : "it has no default export";
  return bootFailed(
    `${entry} does not export a server: ${found}. Export \`default { fetch(req) { ... } }\` (Bun's convention) or \`default app\` (a Hono or Elysia app).`,
  );
}

/** Bun.serve's options from the app: a plain object is spread as Bun would use it; an app instance
 * (Hono, Elysia) has its handlers read through getters and its methods bound, so `this` stays the app. */
function serveOptions(app: App, cfg: WorkerConfig) {
  const keys = [
    "fetch",
    "routes",
    "websocket",
    "error",
    "tls",
    "maxRequestBodySize",
    "development",
    "idleTimeout",
  ];
  const options: Record<string, unknown> = Object.getPrototypeOf(app) === Object.prototype ? { ...app } : {};
  for (const key of keys) {
    const value = app[key];
    if (value !== undefined) options[key] = typeof value === "function" ? value.bind(app) : value;
  }
  // Hono and Elysia have a `routes` array of their own: only Bun's { "/path": handler } table is passed on.
  if (!isBunRoutes(options.routes)) delete options.routes;
  else options.routes = mapRoutes(options.routes, counted, false);
  if (typeof options.fetch === "function") options.fetch = counted(options.fetch as Handler);
  // The supervisor's address wins over any port or host the app names.
  Object.assign(options, { port: cfg.port, hostname: cfg.host, reusePort: true });
  delete options.unix;
  return options as unknown as Parameters<typeof Bun.serve>[0];
}

/** Graceful stop: tell keep-alive clients to close, stop accepting, let requests in flight finish. */
async function drain(graceMs: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (!server) process.exit(0); // still importing the app: nothing to drain
  const notice = Math.min(DRAIN_NOTICE_MS, graceMs / 2);
  try {
    server.reload(closingOptions(app) as unknown as Parameters<Server<unknown>["reload"]>[0]);
    await Bun.sleep(notice);
  } catch (error) {
    // Never let the drain itself fail: without the closing handlers, still stop gracefully.
    console.error(`supervisor worker: could not add Connection: close while draining: ${errorText(error)}`);
  }
  // Resolves when requests in flight are done, but never while WebSockets are open: hence the race.
  await Promise.race([server.stop(), Bun.sleep(graceMs - notice)]);
  await server.stop(true);
  process.exit(0);
}

/** The supervisor died without stopping us (SIGKILL, OOM killer): free the port now and leave. */
function parentLost(): void {
  if (server) void server.stop();
  setTimeout(() => process.exit(1), server?.pendingRequests ? ORPHAN_GRACE_MS : 0);
}

type Handler = (...args: unknown[]) => unknown;

/** Count each request; past --max-requests (plus this worker's jitter) ask once to be replaced. */
function counted(handler: Handler): Handler {
  return (...args) => {
    if (++served === retireAfter) send({ type: "retire", reason: "max-requests" });
    return handler(...args);
  };
}

/** The handlers being served, with `Connection: close` added to every response, swapped in while draining. */
function closingOptions(app: App) {
  const options: Record<string, unknown> = {};
  const fetch = app.fetch;
  if (typeof fetch === "function") {
    options.fetch = counted(async (req, srv) => withClose(await fetch.call(app, req, srv)));
  }
  if (isBunRoutes(app.routes)) {
    // Static Responses become handlers here, so they too can say `Connection: close`.
    const closing = (handler: Handler) => counted(async (...args) => withClose(await handler(...args)));
    options.routes = mapRoutes(app.routes, closing, true);
  }
  return options;
}

/** Apply `wrap` to every handler of a Bun routes table (and to static Responses when `statics`). */
function mapRoutes(
  routes: Record<string, unknown>,
  wrap: (handler: Handler) => Handler,
  statics: boolean,
): Record<string, unknown> {
  const one = (route: unknown): unknown => {
    if (route instanceof Response) return statics ? wrap(() => route.clone()) : route;
    if (typeof route === "function") return wrap(route as Handler);
    // A per-method table: { GET: handler, POST: handler }.
    if (route && typeof route === "object") {
      return Object.fromEntries(Object.entries(route).map(([method, handler]) => [method, one(handler)]));
    }
    return route;
  };
  return Object.fromEntries(Object.entries(routes).map(([path, route]) => [path, one(route)]));
}

/** Bun.serve's `routes`: an object whose keys are paths. */
function isBunRoutes(routes: unknown): routes is Record<string, unknown> {
  if (!routes || typeof routes !== "object" || Array.isArray(routes)) return false;
  const paths = Object.keys(routes);
  return paths.length > 0 && paths.every((path) => path.startsWith("/"));
}

function withClose(res: unknown): unknown {
  if (!(res instanceof Response)) return res; // undefined after a WebSocket upgrade
  try {
    res.headers.set("connection", "close");
    return res;
  } catch {
    // Immutable headers (Response.redirect, fetch() results): copy.
    const copy = new Response(res.body, res);
    copy.headers.set("connection", "close");
    return copy;
  }
}

function bootFailed(message: string): never {
  if (process.send) {
    process.send({ type: "boot-error", message } satisfies WorkerMessage, undefined, undefined, () =>
      process.exit(BOOT_ERROR),
    );
    // The supervisor prints the message once for all workers; exit even if the channel never flushes.
    setTimeout(() => process.exit(BOOT_ERROR), 1000);
  } else {
    console.error(message);
    process.exit(BOOT_ERROR);
  }
  // Keep the module from going on while the message is sent.
  return new Promise<never>(() => {}) as never;
}

function send(message: WorkerMessage): void {
  process.send?.(message);
}

function errorText(error: unknown): string {
  const text = Bun.inspect(error, { colors: false }).trim();
  return text || String(error);
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === "object")
    return `an object without fetch or routes (keys: ${Object.keys(value).join(", ") || "none"})`;
  return `a ${typeof value}`;
}

/**
 * Die with the supervisor: PR_SET_PDEATHSIG delivers SIGTERM the moment it dies (Linux, glibc or musl);
 * the IPC channel's disconnect is the portable fallback (1–2 s late in a compiled binary).
 * Returns a fresh getppid(): Bun's process.ppid is read once at start-up and never changes.
 */
function watchParent(parentPid: number): () => number {
  process.on("disconnect", parentLost);
  let getppid = () => process.ppid;
  if (process.platform === "linux") {
    for (const libc of ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`]) {
      try {
        const { dlopen } = require("bun:ffi") as typeof import("bun:ffi");
        const lib = dlopen(libc, {
          prctl: { args: ["i32", "u64", "u64", "u64", "u64"], returns: "i32" },
          getppid: { args: [], returns: "i32" },
        });
        const PR_SET_PDEATHSIG = 1;
        const SIGTERM = 15;
        lib.symbols.prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
        getppid = () => lib.symbols.getppid();
        break;
      } catch {
        // not this libc; try the next, else rely on the disconnect event
      }
    }
  }
  // The supervisor may have died before prctl took effect.
  if (getppid() !== parentPid) parentLost();
  return getppid;
}
