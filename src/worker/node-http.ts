// node:http apps (Express, Fastify, Koa, NestJS, `http.createServer(...).listen()`): Bun's node:http
// listens through Bun.serve with `onNodeHTTPRequest` and no `fetch`, so bun-server.ts puts the app's
// first node server on the shared port, but its requests never reach a fetch wrapper. They are seen
// here instead, on the node server's own "request" event: counted, logged, and told to close while
// draining; and the drain closes the node server the Node way (`close()` waits for the requests in
// flight; idle keep-alive connections are closed at once).

import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { logRequest } from "./access-log.ts";
import { phase } from "./context.ts";
import { recorder } from "./request-metrics.ts";
import { countRequest } from "./requests.ts";

/** While a node server closes, how often its idle keep-alive connections are closed again. */
const IDLE_SWEEP_MS = 50;

let main: Server | undefined;
/** True from the moment our Bun.serve call for a node server returned until that server said it listens. */
let adopting = false;
let hooked = false;

/**
 * bun-server.ts took a node server's Bun.serve call as the worker's server: the node server that emits
 * "listening" next is that one (its listen() called Bun.serve and emits the event after it returned).
 * node:http is hooked only now, when the app has loaded it: requiring it up front cost every worker of
 * a Bun.serve app ~5 MB of RSS (docs/BENCHMARKS.md, "Memory and idle cost").
 */
export function adoptNodeServer(): void {
  if (main) return;
  adopting = true;
  if (hooked) return;
  hooked = true;
  const http = require("node:http") as typeof import("node:http");
  const proto = http.Server.prototype as Server & Record<string, unknown>;
  const emit = proto.emit;
  proto.emit = function (this: Server, event: string | symbol, ...args: unknown[]) {
    if (event === "listening" && adopting) {
      adopting = false;
      main = this;
    }
    if (event === "request" && this === main)
      onRequest(args[0] as IncomingMessage, args[1] as ServerResponse);
    return (emit as (...a: unknown[]) => boolean).call(this, event, ...args);
  } as typeof proto.emit;
}

/** Stop accepting, close idle keep-alive connections, resolve when the requests in flight are done. */
export function closeNodeServer(): Promise<void> {
  const server = main;
  if (!server) return Promise.resolve();
  return new Promise((resolve) => {
    // A response that was already on its way when the drain began went out without `Connection: close`:
    // its connection turns idle only afterwards, so idle connections are closed again until done.
    const sweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS);
    server.close(() => {
      clearInterval(sweep);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** Past the grace: drop whatever connections are left. */
export function forceCloseNodeServer(): void {
  main?.closeAllConnections();
}

// --- internal ---

function onRequest(req: IncomingMessage, res: ServerResponse): void {
  countRequest();
  if (phase.closing) res.setHeader("connection", "close");
  const log = logRequest;
  const record = recorder;
  if (!log && !record) return;
  const start = performance.now();
  record?.start();
  // Counted when the app ends its response, before any byte of its end can reach the client (Bun's
  // "finish" event comes later than that: a worker SIGKILLed in between would lose the count);
  // "close" without end(): the response was cut short.
  let ended = false;
  const done = () => {
    if (ended) return;
    ended = true;
    log?.(req.method ?? "GET", req.url ?? "/", res.statusCode, start);
    record?.end(req.method ?? "GET", res.statusCode, start);
  };
  const end = res.end;
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    done();
    return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as typeof res.end;
  res.once("close", done);
}
