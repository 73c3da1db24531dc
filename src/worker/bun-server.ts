// The worker's ONE server on the shared port, as Bun.serve starts it. Whoever asks for it — the worker
// for an exported app, the app's own Bun.serve call, Elysia's listen, or node:http's listen (which
// calls Bun.serve with `onNodeHTTPRequest`) — gets it on the supervisor's port and host with
// reusePort, our TLS if any, our idle timeout, body limit and production mode unless the app or the
// user says otherwise, and every fetch/routes handler wrapped to be counted, logged and, while
// draining, answered with `Connection: close`. Any LATER Bun.serve call (a second server on another
// port: metrics, an admin page) is passed to Bun untouched.

import type { Server } from "bun";
import { logRequest } from "./access-log.ts";
import { bootFailed, config, errorText, phase, send } from "./context.ts";
import { adoptNodeServer } from "./node-http.ts";
import { recorder } from "./request-metrics.ts";
import { countRequest, heartbeat } from "./requests.ts";

export type Options = Record<string, unknown>;
type Handler = (this: unknown, ...args: unknown[]) => unknown;

let server: Server<unknown> | undefined;
/** True when the server is node:http's (its requests are seen in node-http.ts, not here). */
let nodeHttp = false;
/** The served handlers as the app gave them, before our wrappers: rebuilt from on drain and on the app's own reloads. */
let appOptions: Options = {};
/** Bun's own `reload` of `server`: the app's calls to `server.reload` go through ours. */
let realReload: ((options: Options) => unknown) | undefined;
let onListening: () => void = () => {};
/** Resolves when the server is listening (the app may start it after its import). */
export const listened = new Promise<void>((resolve) => {
  onListening = resolve;
});
/** performance.now() when the worker began loading the app (set by main.ts), for the ready message. */
export const startup = { at: 0 };

/** The body limit the access-log wrapper enforces (0: Bun enforces it, unlogged). */
let bodyLimit = 0;
/** Cleared when the worker stops serving, so a finished shutdown lets the process end by itself. */
let heartbeatTimer: Timer | undefined;
export const stopHeartbeat = () => clearInterval(heartbeatTimer);

export const mainServer = () => server;
export const isNodeHttp = () => nodeHttp;

/** Bun's own Bun.serve, taken before the app can see (or replace) it. */
const bunServe = Bun.serve;
/** --tls-cert/--tls-key, read before the app runs. */
let tls: { cert: string; key: string } | undefined;

/** Take over Bun.serve so that the app's first server becomes ours. */
export function hookBunServe(files: { cert: string; key: string } | undefined): void {
  tls = files;
  Bun.serve = function serve(this: unknown, options: Parameters<typeof Bun.serve>[0]) {
    if (server) return bunServe.call(this, options) as Server<unknown>; // a second server: not ours
    return listen({ ...(options as unknown as Options) }, true);
  } as typeof Bun.serve;
}

/** Serve an exported app (`default { fetch }`, `default app`) on the shared port. */
export const exportServe = (options: Options): Server<unknown> => listen(options, false);

/** Bun.serve's options from an exported app: a plain object is spread as Bun would use it; an app
 * instance (Hono, Elysia) has its handlers read through getters and its methods bound, so `this` stays the app. */
export function exportedOptions(app: Options): Options {
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

/** Draining begins: handlers answer with `Connection: close` from now on. */
export function startClosing(): void {
  phase.closing = true;
  if (server && !nodeHttp) realReload?.(wrapHandlers(appOptions));
}

/** Bun.serve's `routes`: an object whose keys are paths. */
export function isBunRoutes(routes: unknown): routes is Options {
  if (!routes || typeof routes !== "object" || Array.isArray(routes)) return false;
  const paths = Object.keys(routes);
  return paths.length > 0 && paths.every((path) => path.startsWith("/"));
}

// --- internal ---

function listen(options: Options, fromApp: boolean): Server<unknown> {
  nodeHttp = typeof options.onNodeHTTPRequest === "function";
  appOptions = options;
  const serveOptions: Options = { ...options, ...wrapHandlers(options) };
  if (!isBunRoutes(serveOptions.routes)) delete serveOptions.routes;
  Object.assign(serveOptions, { port: config.port, hostname: config.host, reusePort: true });
  delete serveOptions.unix;
  if (tls) serveOptions.tls = tls;
  // node:http brings its own timeout and body limit (server.timeout, none): only the user's flags change them.
  const own = (key: string, explicit: boolean, value: number) => {
    if (explicit || (!nodeHttp && serveOptions[key] === undefined)) serveOptions[key] = value;
  };
  own("idleTimeout", config.idleTimeout.explicit, config.idleTimeout.seconds);
  own("maxRequestBodySize", config.maxBody.explicit, config.maxBody.bytes);
  if (logRequest && !nodeHttp) {
    // Bun refuses a body over its limit before any handler runs, so the refusal could not be logged:
    // with the access log on, the wrapper enforces the limit itself (a logged 413).
    bodyLimit = Number(serveOptions.maxRequestBodySize);
    serveOptions.maxRequestBodySize = Number.MAX_SAFE_INTEGER;
  }
  if (!nodeHttp && serveOptions.development === undefined) serveOptions.development = config.development;
  let started: Server<unknown>;
  try {
    started = bunServe(serveOptions as unknown as Parameters<typeof Bun.serve>[0]) as Server<unknown>;
  } catch (error) {
    bootFailed(`cannot listen on ${config.host}:${config.port}: ${errorText(error)}`);
    throw error; // back to the app's Bun.serve call, so its code does not go on without a server
  }
  server = started;
  if (nodeHttp) adoptNodeServer();
  const reload = started.reload.bind(started) as unknown as (options: Options) => unknown;
  realReload = reload;
  if (fromApp && !nodeHttp) {
    // An app that swaps its handlers (Elysia does once its plugins load) keeps our wrappers. Bun's
    // reload replaces only the keys given, so the app's options are merged the same way.
    started.reload = ((next: Options) => {
      for (const [key, value] of Object.entries(next ?? {})) if (value !== undefined) appOptions[key] = value;
      reload({ ...next, ...wrapHandlers(next ?? {}) });
      return started;
    }) as unknown as typeof started.reload;
  }
  const at = performance.now();
  send({ type: "ready", startupMs: Math.round(at - startup.at), at: Math.round(at) });
  // Sent from the event loop: a loop blocked by a handler sends none, and --timeout catches it.
  heartbeatTimer = setInterval(heartbeat, config.heartbeatMs);
  onListening();
  return started;
}

/** `fetch` and Bun `routes` of `options`, each handler wrapped for the current mode. */
function wrapHandlers(options: Options): Options {
  const wrapped: Options = {};
  if (typeof options.fetch === "function") wrapped.fetch = wrap(options.fetch as Handler);
  if (isBunRoutes(options.routes)) {
    // Static Responses become handlers when each response must be seen (logged, or given Connection: close).
    wrapped.routes = mapRoutes(
      options.routes,
      wrap,
      phase.closing || logRequest !== undefined || recorder !== undefined,
    );
  }
  return wrapped;
}

/**
 * The one wrapper around every app handler: counts the request, and only when asked logs it
 * (--access-log), records it (--admin's request metrics) and adds `Connection: close` (draining).
 * Off, these cost nothing: the plain wrapper is the one that existed before them. `this` is passed on
 * (Bun calls with the server).
 */
function wrap(handler: Handler): Handler {
  const log = logRequest;
  const record = recorder;
  if (!log && !record && !phase.closing) {
    return function counted(this: unknown, ...args: unknown[]) {
      countRequest();
      return handler.apply(this, args);
    };
  }
  const close = phase.closing;
  const done = (req: Request, status: number, start: number) => {
    log?.(req.method, req.url, status, start);
    record?.end(req.method, status, start);
  };
  const finish = (res: unknown, req: Request, start: number) => {
    done(req, res instanceof Response ? res.status : 101, start);
    return close ? withClose(res) : res;
  };
  return function observed(this: unknown, ...args: unknown[]) {
    countRequest();
    const start = performance.now();
    record?.start();
    let req = args[0] as Request;
    if (bodyLimit > 0 && req.body) {
      const declared = req.headers.get("content-length");
      if (declared !== null && Number(declared) > bodyLimit) return finish(tooLarge(), req, start);
      if (declared === null) args[0] = req = limitBody(req, bodyLimit);
    }
    let res: unknown;
    try {
      res = handler.apply(this, args);
    } catch (error) {
      // Bun answers with the app's `error` handler or a 500; the status is logged as 500.
      done(req, 500, start);
      throw error;
    }
    if (res instanceof Promise) {
      // An async handler that never awaited is already settled: log now, and give Bun the value,
      // which keeps its fast path (a `.then` would hand it a pending promise).
      if (Bun.peek.status(res) === "fulfilled") return finish(Bun.peek(res), req, start);
      return res.then(
        (value) => finish(value, req, start),
        (error) => {
          done(req, 500, start);
          throw error;
        },
      );
    }
    return finish(res, req, start);
  };
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

function isMethodTable(route: unknown): route is Options {
  if (!route || typeof route !== "object") return false;
  const proto = Object.getPrototypeOf(route);
  return (
    (proto === Object.prototype || proto === null) && Object.keys(route).every((k) => /^[A-Z]+$/.test(k))
  );
}

function tooLarge(): Response {
  return new Response("Payload Too Large", { status: 413, headers: { connection: "close" } });
}

/** A body without a declared length (chunked) fails to read past `limit` bytes, as under Bun's own limit. */
function limitBody(req: Request, limit: number): Request {
  let seen = 0;
  const counted = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > limit) controller.error(new Error(`request body over --max-body-size (${limit} bytes)`));
      else controller.enqueue(chunk);
    },
  });
  return new Request(req, { body: req.body?.pipeThrough(counted) ?? null, duplex: "half" } as RequestInit);
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
