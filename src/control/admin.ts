// `--admin <host:port>`: metrics and probes served by the supervisor itself on a port of its own
// (never reusePort, never the app's port: app requests do not pass through the parent).
//   GET /metrics  Prometheus text     GET /healthz  200 while the process answers
//   GET /readyz   200 when a worker is ready and we are not shutting down, else 503

import { bootError, usageError } from "../core/exit-codes.ts";
import { consistsOf, DIGITS, HEX_DIGITS, isDigits, LETTERS } from "../core/text.ts";
import { METRICS_CONTENT_TYPE, renderMetrics } from "./metrics.ts";
import type { ControlActions } from "./types.ts";

export const DEFAULT_ADMIN_HOST = "127.0.0.1";

export interface AdminSpec {
  hostname: string;
  port: number;
}

/** What the admin endpoint reads; the supervisor's ControlActions plus its shutdown flag. */
export type AdminActions = Pick<ControlActions, "snapshot"> & { isShuttingDown(): boolean };

export interface AdminServer {
  /** e.g. "http://127.0.0.1:9100" */
  url: string;
  hostname: string;
  port: number;
  /** Stop listening and close open connections (probes and scrapes are short). */
  stop(): Promise<void>;
}

/** "9100" → 127.0.0.1:9100; "0.0.0.0:9100", "localhost:9100", "[::1]:9100". */
export function parseAdminSpec(spec: string): AdminSpec {
  const bad = (why: string) =>
    usageError(`--admin must be a port or host:port, e.g. 9100 or 0.0.0.0:9100 (${why}), got '${spec}'`);
  const trimmed = spec.trim();
  let hostname = DEFAULT_ADMIN_HOST;
  let rawPort = trimmed;
  const close = trimmed.indexOf("]:");
  const inBrackets = trimmed.slice(1, close);
  if (
    close > 0 &&
    trimmed.startsWith("[") &&
    consistsOf(inBrackets, `${HEX_DIGITS}:.`) &&
    !trimmed.slice(close + 2).includes(":")
  ) {
    hostname = inBrackets;
    rawPort = trimmed.slice(close + 2);
  } else if (trimmed.includes(":")) {
    const colon = trimmed.lastIndexOf(":");
    hostname = trimmed.slice(0, colon);
    rawPort = trimmed.slice(colon + 1);
    if (hostname === "") throw bad("the host is missing");
    if (!consistsOf(hostname, `${LETTERS}${DIGITS}.-`)) {
      const v6hint = consistsOf(hostname, `${HEX_DIGITS}:.`);
      throw bad(v6hint ? "an IPv6 address goes in brackets, like [::1]:9100" : "not a host name or address");
    }
  }
  const port = isDigits(rawPort) && rawPort.length <= 5 ? Number(rawPort) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) throw bad("the port must be a number from 1 to 65535");
  return { hostname, port };
}

export function startAdminServer(spec: string, actions: AdminActions): AdminServer {
  const { hostname, port } = parseAdminSpec(spec);
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname,
      port,
      reusePort: false,
      development: false,
      fetch: (req) => handle(req, actions),
      error: (error) => text(500, `internal error: ${error.message}\n`),
    });
  } catch (error) {
    throw listenError(error, hostname, port);
  }
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return {
    url: `http://${host}:${server.port}`,
    hostname,
    port: server.port ?? port,
    stop: () => server.stop(true),
  };
}

// --- internal ---

function handle(req: Request, actions: AdminActions): Response {
  const { pathname } = new URL(req.url);
  const route = ROUTES[pathname];
  if (!route) return text(404, `not found: try ${Object.keys(ROUTES).join(", ")}\n`);
  if (req.method !== "GET" && req.method !== "HEAD") return text(405, "only GET\n", { allow: "GET, HEAD" });
  const res = route(actions);
  return req.method === "HEAD" ? new Response(null, { status: res.status, headers: res.headers }) : res;
}

const ROUTES: Record<string, (actions: AdminActions) => Response> = {
  "/metrics": (actions) =>
    text(200, renderMetrics(actions.snapshot()), { "content-type": METRICS_CONTENT_TYPE }),
  "/healthz": () => text(200, "ok\n"),
  "/readyz": (actions) => {
    const s = actions.snapshot();
    if (actions.isShuttingDown() || s.phase === "stopping") return text(503, "shutting down\n");
    if (s.workersReady < 1) return text(503, `not ready: 0 of ${s.workersConfigured} workers ready\n`);
    return text(200, `ready: ${s.workersReady} of ${s.workersConfigured} workers ready\n`);
  },
};

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...headers },
  });
}

function listenError(error: unknown, hostname: string, port: number) {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE") return bootError(`--admin port ${port} on ${hostname} is already in use`);
  if (code === "EACCES") {
    return bootError(
      `no permission to listen on --admin port ${port} (below 1024 needs root or CAP_NET_BIND_SERVICE)`,
    );
  }
  return usageError(`--admin cannot listen on ${hostname}:${port}: ${code ?? "unknown or unusable address"}`);
}
