// The worker: imports the user's app and serves it on the shared port with SO_REUSEPORT.
// The supervisor runs this folder, bundled into one script (source.ts), as an async function body
// under `bun -e` (the compiled binary acts as bun with BUN_BE_BUN=1; see src/runtime/host.ts), so
// the app resolves its packages, tsconfig, bunfig and .env exactly as under `bun app.ts`. Hence:
// type imports and local files only, `require` for Bun's built-ins, no `import.meta`.
//
// Three kinds of app are served, all on the worker's one server (bun-server.ts):
// - one that exports a server (`default { fetch }`, `default { routes }`, `default app` for Hono or
//   Elysia): the worker calls Bun.serve with it once the import is done;
// - one that starts its own Bun server (`Bun.serve({ port: 1234, fetch })`, Elysia's `app.listen(3000)`):
//   its FIRST server is started on the supervisor's port and host, whatever it asked for;
// - a node:http app (Express, Fastify, Koa, NestJS, `http.createServer().listen()`): its first
//   listening server, whose requests are seen on node:http's side (node-http.ts).
// Start-up work is the module's own top-level code (top-level await included): the worker is ready
// when it has run and the server listens. Shutdown work is the app's SIGTERM listeners (shutdown.ts).

import { importApp, noServer, serverExport } from "./app.ts";
import {
  exportedOptions,
  exportServe,
  hookBunServe,
  isNodeHttp,
  listened,
  mainServer,
  startClosing,
  startup,
  stopHeartbeat,
} from "./bun-server.ts";
import { bootFailed, config, errorText, warn } from "./context.ts";
import { closeNodeServer, forceCloseNodeServer } from "./node-http.ts";
import { watchParent } from "./parent.ts";
import { WORKER_CONFIG_ENV, WORKER_SOURCE_ENV } from "./protocol.ts";
import { holdAppSignalListeners, runAppShutdown } from "./shutdown.ts";
import { cleanChildEnvironment } from "./spawn-env.ts";

/** While draining, every response tells keep-alive clients to close; this long before the listener
 * closes lets clients with requests in flight or queued see it (docs/DESIGN.md: 0 failed requests with
 * 200 ms–1 s, 9–20 failed with a bare `server.stop()`). */
const DRAIN_NOTICE_MS = 500;
/** After the app's async shutdown listeners have settled, how long what they left running may go on. */
const SETTLE_MS = 1_000;
/** When the supervisor itself is gone (SIGKILLed), in-flight requests get this long, then we exit:
 * the promise is that no worker outlives the supervisor by more than 1 s. */
const ORPHAN_GRACE_MS = 500;
/** A module with no default export may start its server after its import (`main()` not awaited, its
 * start-up work first): it is waited for until this long before --boot-timeout, so that the worker
 * can still say what is wrong before the supervisor kills it. */
const LATE_SERVE_MARGIN_MS = 500;

// The app and whatever it spawns see a plain environment, plus PORT and SUPERVISOR_WORKER_ID.
cleanChildEnvironment([WORKER_CONFIG_ENV, WORKER_SOURCE_ENV]);

let stopping = false;
const parent = watchParent(parentLost);

// Terminal Ctrl-C reaches the whole process group; the supervisor decides and sends TERM.
process.on("SIGINT", () => {});
// USR1/USR2 are forwarded for the app's own handlers; without a listener they would kill the worker.
process.on("SIGUSR1", () => {});
process.on("SIGUSR2", () => {});
process.on("SIGTERM", () => void drain(config.gracefulTimeoutMs));
process.on("SIGQUIT", () => process.exit(0));
// From here on the app's own SIGTERM/SIGINT listeners are its shutdown work, run by drain().
holdAppSignalListeners();

// --tls-cert/--tls-key win over any `tls` the app gives; read once, before the app runs.
const tls = config.tls ? await readTls(config.tls) : undefined;
hookBunServe(tls);

startup.at = performance.now();
const mod = await importApp(config.entry);
if (!mainServer()) {
  const app = serverExport(mod);
  if (app) exportServe(exportedOptions(app));
  else if ("default" in mod) bootFailed(noServer(config.entry, mod, 0));
  else {
    const waitMs = Math.max(0, config.bootTimeoutMs - LATE_SERVE_MARGIN_MS);
    let timer: Timer | undefined;
    await Promise.race([listened, new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
    if (!mainServer()) bootFailed(noServer(config.entry, mod, waitMs));
  }
}
if (stopping) process.exit(0);

// --- internal ---

/**
 * Graceful stop, within `graceMs` of TERM: tell keep-alive clients to close, stop accepting, let the
 * requests in flight finish, then run the app's shutdown work with the time that is left.
 */
async function drain(graceMs: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const server = mainServer();
  if (!server) process.exit(0); // still importing the app: nothing to drain
  const deadline = performance.now() + graceMs;
  const left = () => Math.max(0, deadline - performance.now());
  const grace = `--graceful-timeout ${graceMs / 1000}s`;
  stopHeartbeat();
  try {
    startClosing();
    await Bun.sleep(Math.min(DRAIN_NOTICE_MS, graceMs / 2));
  } catch (error) {
    // Never let the drain itself fail: without the closing handlers, still stop gracefully.
    warn(`could not add Connection: close while draining: ${errorText(error)}`);
  }
  // Bun's stop() resolves when requests in flight are done, but never while WebSockets are open.
  const stopped = isNodeHttp() ? closeNodeServer() : server.stop();
  const inTime = (await within(stopped, left())) !== LATE;
  if (!inTime && server.pendingRequests > 0) {
    warn(`${server.pendingRequests} request(s) still in flight after ${grace}; closing them`);
  }
  if (isNodeHttp()) forceCloseNodeServer();
  await server.stop(true);

  const shutdown = await within(runAppShutdown(), left());
  if (shutdown === "none") process.exit();
  if (shutdown === LATE) return shutdownTooLong(grace);
  // What the listeners started may go on in callbacks (`server.close(() => pool.end())`, or hooks a
  // framework does not await, as Elysia's onStop): the process ends when they are done, as under Node.
  // A sync listener gets until the deadline; once async ones have settled, a leftover timer of the
  // app's gets SETTLE_MS, not the whole grace.
  parent.unref();
  if (shutdown === "running") setTimeout(() => shutdownTooLong(grace), left()).unref();
  else setTimeout(() => process.exit(), Math.min(left(), SETTLE_MS)).unref();
}

const LATE = Symbol("late");

/** `promise`, or LATE after `ms`; the timer is cleared either way (a pending one would keep the
 * process alive after its shutdown work is done). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof LATE> {
  let timer: Timer | undefined;
  const late = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(() => resolve(LATE), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

function shutdownTooLong(grace: string): never {
  warn(`shutdown work still running after ${grace}; exiting`);
  return process.exit(1);
}

/** The supervisor died without stopping us (SIGKILL, OOM killer): free the port now and leave. */
function parentLost(): void {
  const server = mainServer();
  if (server) void (isNodeHttp() ? closeNodeServer() : server.stop());
  setTimeout(() => process.exit(1), server?.pendingRequests ? ORPHAN_GRACE_MS : 0);
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
