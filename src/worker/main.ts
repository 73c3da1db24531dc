// The worker: imports the user's app and serves it on the shared port with SO_REUSEPORT.
// The supervisor runs this file's code as an async function body under `bun -e` (the compiled binary
// acts as bun with BUN_BE_BUN=1; see host.ts), so the app resolves its packages, tsconfig, bunfig and
// .env exactly as under `bun app.ts`. Hence it must stand alone: type imports only, `require` for
// Bun's built-ins, no `import.meta`. (That is also why it is one file, not several small ones.)
//
// Two kinds of app are served:
// - one that exports a server (`default { fetch }`, `default { routes }`, `default app` for Hono or
//   Elysia): the worker calls Bun.serve with it once the import is done;
// - one that starts its own (`Bun.serve({ port: 1234, fetch })`, Elysia's `app.listen(3000)`): the
//   worker wraps Bun.serve before the import, so the app's FIRST server is started on the supervisor's
//   port and host with reusePort, whatever the app asked for, and becomes the server this worker
//   drains, counts, logs and reports ready. Its default export, if any, is then not served again.
//   Any LATER Bun.serve call (a second server on another port: metrics, an admin page) is passed to
//   Bun untouched: the supervisor neither balances nor drains it, and every worker opens its own, so
//   such a port must be 0 or use reusePort itself. An app that exports a handler AND starts a server
//   while it is imported has that server taken as its main one.

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
/** A module with no default export may start its server from a callback after its import is done
 * (`main()` not awaited): wait this long for it before calling it a boot error. Well inside the
 * supervisor's --boot-timeout (30 s by default); top-level `await` has no such limit. */
const LATE_SERVE_MS = 2_000;
/** Access-log lines are written together once per event-loop turn, or sooner past this many characters. */
const ACCESS_LOG_BUFFER_CHARS = 64 * 1024;

const config = readConfig();
// The app and whatever it spawns see a plain environment, plus PORT and SUPERVISOR_WORKER_ID.
delete process.env.SUPERVISOR_WORKER_CONFIG;
delete process.env.SUPERVISOR_WORKER_JS;

type Options = Record<string, unknown>;
type Handler = (this: unknown, ...args: unknown[]) => unknown;

let server: Server<unknown> | undefined;
/** The served handlers as the app gave them, before our wrappers: rebuilt from on drain and on the app's own reloads. */
let appOptions: Options = {};
/** Bun's own `reload` of `server`: the app's calls to `server.reload` go through ours. */
let realReload: ((options: Options) => unknown) | undefined;
let stopping = false;
/** Set once draining: handlers built from then on add `Connection: close`. */
let closing = false;
/** Requests this worker has taken, counted in its handlers (a static `routes` Response is not counted
 * unless the access log is on, which turns static Responses into handlers). */
let served = 0;
const retireAfter =
  config.maxRequests > 0
    ? config.maxRequests + Math.floor(Math.random() * (config.maxRequestsJitter + 1))
    : 0;
const parent = watchParent(config.parentPid);
const logRequest = config.accessLog ? accessLogger(config) : undefined;

// Terminal Ctrl-C reaches the whole process group; the supervisor decides and sends TERM.
process.on("SIGINT", () => {});
// USR1/USR2 are forwarded for the app's own handlers; without a listener they would kill the worker.
process.on("SIGUSR1", () => {});
process.on("SIGUSR2", () => {});
process.on("SIGTERM", () => {
  if (parent.getppid() !== config.parentPid) return parentLost();
  void drain(config.gracefulTimeoutMs);
});
process.on("SIGQUIT", () => process.exit(0));

// --tls-cert/--tls-key win over any `tls` the app gives; read once, before the app runs.
const tls = config.tls ? await readTls(config.tls) : undefined;
let listening: () => void = () => {};
const listened = new Promise<void>((resolve) => {
  listening = resolve;
});
const bunServe = Bun.serve;
Bun.serve = function serve(this: unknown, options: Parameters<typeof Bun.serve>[0]) {
  if (server) return bunServe.call(this, options) as Server<unknown>; // a second server: not ours
  return listen({ ...(options as unknown as Options) }, true);
} as typeof Bun.serve;

const importStarted = performance.now();
const mod = await importApp(config.entry);
if (!server) {
  const app = serverExport(mod);
  if (app) listen(exportedOptions(app), false);
  else if ("default" in mod) bootFailed(noServer(config.entry, mod));
  else {
    await Promise.race([listened, Bun.sleep(LATE_SERVE_MS)]);
    if (!server) bootFailed(noServer(config.entry, mod));
  }
}
if (stopping) process.exit(0);

// --- internal ---

type App = Options & { fetch?: unknown; routes?: unknown };

function readConfig(): WorkerConfig {
  const config = JSON.parse(process.env.SUPERVISOR_WORKER_CONFIG ?? "null") as WorkerConfig | null;
  if (config) return config;
  console.error("this is a supervisor worker; start it with `supervisor run <app>`");
  return process.exit(2);
}

/**
 * Start THE server of this worker from the app's options (its export's, or those it gave Bun.serve):
 * the supervisor's port and host with reusePort, our TLS if any, each handler wrapped.
 */
function listen(options: Options, fromApp: boolean): Server<unknown> {
  appOptions = options;
  const serveOptions: Options = { ...options, ...wrapHandlers(options) };
  if (!isBunRoutes(serveOptions.routes)) delete serveOptions.routes;
  Object.assign(serveOptions, { port: config.port, hostname: config.host, reusePort: true });
  delete serveOptions.unix;
  if (tls) serveOptions.tls = tls;
  let started: Server<unknown>;
  try {
    started = bunServe(serveOptions as unknown as Parameters<typeof Bun.serve>[0]) as Server<unknown>;
  } catch (error) {
    bootFailed(`cannot listen on ${config.host}:${config.port}: ${errorText(error)}`);
    throw error; // back to the app's Bun.serve call, so its code does not go on without a server
  }
  server = started;
  const reload = started.reload.bind(started) as unknown as (options: Options) => unknown;
  realReload = reload;
  if (fromApp) {
    // An app that swaps its handlers (Elysia does once its plugins load) keeps our wrappers. Bun's
    // reload replaces only the keys given, so the app's options are merged the same way.
    started.reload = ((next: Options) => {
      for (const [key, value] of Object.entries(next ?? {})) if (value !== undefined) appOptions[key] = value;
      reload({ ...next, ...wrapHandlers(next ?? {}) });
      return started;
    }) as unknown as typeof started.reload;
  }
  send({ type: "ready", startupMs: Math.round(performance.now() - importStarted) });
  setImmediate(parent.armDeathSignal);
  // Sent from the event loop: a loop blocked by a handler sends none, and --timeout catches it.
  setInterval(() => send({ type: "heartbeat", requests: served }), config.heartbeatMs);
  listening();
  return started;
}

async function importApp(entry: string): Promise<Options> {
  try {
    return await import(entry);
  } catch (error) {
    return bootFailed(errorText(error));
  }
}

function serverExport(mod: Options): App | undefined {
  const app = mod.default as App | undefined;
  if (app && (typeof app === "object" || typeof app === "function")) {
    if (typeof app.fetch === "function" || isBunRoutes(app.routes)) return app;
  }
  return undefined;
}

function noServer(entry: string, mod: Options): string {
  const found =
    "default" in mod
      ? `its default export is ${describe(mod.default)}`
      : `it has no default export and started no server within ${LATE_SERVE_MS / 1000} s`;
  return `${entry} does not export a server: ${found}. Export \`default { fetch(req) { ... } }\` (Bun's convention) or \`default app\` (a Hono or Elysia app), or call Bun.serve() or app.listen() while it loads.`;
}

/** Bun.serve's options from an exported app: a plain object is spread as Bun would use it; an app
 * instance (Hono, Elysia) has its handlers read through getters and its methods bound, so `this` stays the app. */
function exportedOptions(app: App): Options {
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
  const options: Options = Object.getPrototypeOf(app) === Object.prototype ? { ...app } : {};
  for (const key of keys) {
    const value = app[key];
    if (value !== undefined) options[key] = typeof value === "function" ? value.bind(app) : value;
  }
  // Hono and Elysia have a `routes` array of their own: only Bun's { "/path": handler } table is passed on.
  if (!isBunRoutes(options.routes)) delete options.routes;
  return options;
}

/** `fetch` and Bun `routes` of `options`, each handler wrapped for the current mode. */
function wrapHandlers(options: Options): Options {
  const wrapped: Options = {};
  if (typeof options.fetch === "function") wrapped.fetch = wrap(options.fetch as Handler);
  if (isBunRoutes(options.routes)) {
    // Static Responses become handlers when each response must be seen (logged, or given Connection: close).
    wrapped.routes = mapRoutes(options.routes, wrap, closing || logRequest !== undefined);
  }
  return wrapped;
}

/**
 * The one wrapper around every app handler: counts the request (--max-requests), and only when asked
 * logs it (--access-log) and adds `Connection: close` (draining). Off, the access log costs nothing:
 * the plain wrapper is the one that existed before it. `this` is passed on (Bun calls with the server).
 */
function wrap(handler: Handler): Handler {
  const log = logRequest;
  if (!log && !closing) {
    return function counted(this: unknown, ...args: unknown[]) {
      if (++served === 1) send({ type: "serving" });
      if (served === retireAfter) send({ type: "retire", reason: "max-requests" });
      return handler.apply(this, args);
    };
  }
  const close = closing;
  const finish = (res: unknown, req: unknown, start: number) => {
    log?.(req as Request, res instanceof Response ? res.status : 101, start);
    return close ? withClose(res) : res;
  };
  return function observed(this: unknown, ...args: unknown[]) {
    if (++served === 1) send({ type: "serving" });
    if (served === retireAfter) send({ type: "retire", reason: "max-requests" });
    const start = performance.now();
    const req = args[0];
    let res: unknown;
    try {
      res = handler.apply(this, args);
    } catch (error) {
      // Bun answers with the app's `error` handler or a 500; the status is logged as 500.
      log?.(req as Request, 500, start);
      throw error;
    }
    if (res instanceof Promise) {
      // An async handler that never awaited is already settled: log now, and give Bun the value,
      // which keeps its fast path (a `.then` would hand it a pending promise).
      if (Bun.peek.status(res) === "fulfilled") return finish(Bun.peek(res), req, start);
      return res.then(
        (value) => finish(value, req, start),
        (error) => {
          log?.(req as Request, 500, start);
          throw error;
        },
      );
    }
    return finish(res, req, start);
  };
}

/** Graceful stop: tell keep-alive clients to close, stop accepting, let requests in flight finish. */
async function drain(graceMs: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (!server) process.exit(0); // still importing the app: nothing to drain
  const notice = Math.min(DRAIN_NOTICE_MS, graceMs / 2);
  try {
    closing = true;
    realReload?.(wrapHandlers(appOptions));
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

/** Apply `wrap` to every handler of a Bun routes table (and to static Responses when `statics`). */
function mapRoutes(routes: Options, wrap: (handler: Handler) => Handler, statics: boolean): Options {
  const one = (route: unknown): unknown => {
    if (route instanceof Response) return statics ? wrap(() => route.clone()) : route;
    if (typeof route === "function") return wrap(route as Handler);
    // A per-method table: { GET: handler, POST: handler }. (Anything else, such as an HTML import, is Bun's.)
    if (isMethodTable(route)) {
      return Object.fromEntries(Object.entries(route).map(([method, handler]) => [method, one(handler)]));
    }
    return route;
  };
  return Object.fromEntries(Object.entries(routes).map(([path, route]) => [path, one(route)]));
}

/** Bun.serve's `routes`: an object whose keys are paths. */
function isBunRoutes(routes: unknown): routes is Options {
  if (!routes || typeof routes !== "object" || Array.isArray(routes)) return false;
  const paths = Object.keys(routes);
  return paths.length > 0 && paths.every((path) => path.startsWith("/"));
}

function isMethodTable(route: unknown): route is Options {
  if (!route || typeof route !== "object") return false;
  const proto = Object.getPrototypeOf(route);
  return (
    (proto === Object.prototype || proto === null) && Object.keys(route).every((k) => /^[A-Z]+$/.test(k))
  );
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

/**
 * --access-log: one line per request on stdout. Text: `<ISO time> [worker 1] GET /path 200 1.2ms pid 123`;
 * JSON (--log-format json): one object per line. The path has no query string (it may hold secrets).
 * A handler that returns nothing (a WebSocket upgrade) is logged as 101; one that throws as 500.
 * Lines of one event-loop turn are written together, synchronously (a pending async write would be
 * lost at process.exit), and once more on exit.
 */
function accessLogger(cfg: WorkerConfig): (req: Request, status: number, start: number) => void {
  const { writeSync } = require("node:fs") as typeof import("node:fs");
  const { slot } = cfg;
  const pid = process.pid;
  const line =
    cfg.logFormat === "json"
      ? (time: string, method: string, path: string, status: number, ms: number) =>
          `{"time":"${time}","level":"info","msg":"request","method":${JSON.stringify(method)},"path":${JSON.stringify(path)},"status":${status},"durationMs":${ms},"worker":${slot},"pid":${pid}}\n`
      : (time: string, method: string, path: string, status: number, ms: number) =>
          `${time} [worker ${slot}] ${method} ${path} ${status} ${ms}ms pid ${pid}\n`;
  // One ISO time string per millisecond: at tens of thousands of requests a second, most lines share it.
  let lastMs = 0;
  let lastTime = "";
  let pending = "";
  let scheduled = false;
  let broken = false;
  const flush = () => {
    scheduled = false;
    if (!pending) return;
    const bytes = Buffer.from(pending);
    pending = "";
    for (let offset = 0; offset < bytes.length && !broken; ) {
      try {
        offset += writeSync(1, bytes, offset);
      } catch (error) {
        // A non-blocking stdout that is full: wait for the reader. Closed (EPIPE): stop logging, keep serving.
        if ((error as NodeJS.ErrnoException).code === "EAGAIN") Bun.sleepSync(1);
        else broken = true;
      }
    }
  };
  process.on("exit", flush);
  return (req, status, start) => {
    const ms = Math.round((performance.now() - start) * 100) / 100;
    const now = Date.now();
    if (now !== lastMs) {
      lastMs = now;
      lastTime = new Date(now).toISOString();
    }
    pending += line(lastTime, req.method, pathOf(req.url), status, ms);
    if (pending.length > ACCESS_LOG_BUFFER_CHARS) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}

/** The path of an absolute URL, without the query: cheaper than `new URL()` on every request. */
function pathOf(url: string): string {
  const slash = url.indexOf("/", url.indexOf("//") + 2);
  if (slash < 0) return "/";
  const query = url.indexOf("?", slash);
  return query < 0 ? url.slice(slash) : url.slice(slash, query);
}

async function readTls(files: { cert: string; key: string }): Promise<{ cert: string; key: string }> {
  const read = async (what: string, path: string) => {
    try {
      return await Bun.file(path).text();
    } catch (error) {
      return bootFailed(`cannot read the TLS ${what} file ${path}: ${errorText(error)}`);
    }
  };
  return { cert: await read("certificate", files.cert), key: await read("key", files.key) };
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
 * the IPC channel's disconnect is the portable fallback (1–2 s late in a compiled binary), and covers
 * the time before prctl is set. prctl is set once the worker is ready, not before: bun:ffi's dlopen
 * compiles its trampolines (~4 ms of CPU), which four workers starting at once on two cores would
 * add to every launch and every restart.
 * `getppid()` reads the parent afresh: Bun's process.ppid is read once at start-up and never changes.
 */
function watchParent(parentPid: number): { getppid: () => number; armDeathSignal: () => void } {
  process.on("disconnect", parentLost);
  let getppid = () => process.ppid;
  const armDeathSignal = () => {
    if (process.platform !== "linux") return;
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
    // The supervisor may have died before prctl took effect.
    if (getppid() !== parentPid) parentLost();
  };
  return { getppid: () => getppid(), armDeathSignal };
}
