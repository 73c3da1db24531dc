// The admin endpoint (--admin): metrics and Kubernetes probes from the supervisor's own port,
// against a fake ControlActions. Ports come from 19000-19999.
import { afterEach, describe, expect, test } from "bun:test";
import { type AdminServer, parseAdminSpec, startAdminServer } from "../src/control/admin.ts";
import { SupervisorError } from "../src/core/exit-codes.ts";
import { fakeActions } from "./fake-control.ts";

const servers: AdminServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

/** A port in 19000-19999 that nobody listens on now. */
function adminPort(): number {
  for (let i = 0; i < 200; i++) {
    const port = 19000 + Math.floor(Math.random() * 1000);
    try {
      Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } }).stop(true);
      return port;
    } catch {
      // taken, try another
    }
  }
  throw new Error("no free port in 19000-19999");
}

function start(spec: string, actions = fakeActions()) {
  const server = startAdminServer(spec, actions);
  servers.push(server);
  return { server, actions };
}

async function get(url: string, init: RequestInit = {}) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(3_000) });
  return { status: res.status, body: await res.text(), type: res.headers.get("content-type") };
}

function failure(fn: () => unknown): { code: number; message: string } {
  try {
    fn();
  } catch (error) {
    if (error instanceof SupervisorError) return { code: error.exitCode, message: error.message };
    throw error;
  }
  throw new Error("expected a SupervisorError");
}

describe("parseAdminSpec", () => {
  test.each([
    ["9100", { hostname: "127.0.0.1", port: 9100 }],
    ["0.0.0.0:9100", { hostname: "0.0.0.0", port: 9100 }],
    ["localhost:19001", { hostname: "localhost", port: 19001 }],
    ["[::1]:9100", { hostname: "::1", port: 9100 }],
    ["[::]:65535", { hostname: "::", port: 65535 }],
    [" 9100 ", { hostname: "127.0.0.1", port: 9100 }],
  ])("%p", (spec, expected) => {
    expect(parseAdminSpec(spec)).toEqual(expected);
  });

  test.each([
    ["", "the port must be a number from 1 to 65535"],
    ["metrics", "the port must be a number from 1 to 65535"],
    ["0", "the port must be a number from 1 to 65535"],
    ["70000", "the port must be a number from 1 to 65535"],
    ["127.0.0.1:", "the port must be a number from 1 to 65535"],
    ["127.0.0.1:x", "the port must be a number from 1 to 65535"],
    [":9100", "the host is missing"],
    ["::1:9100", "an IPv6 address goes in brackets, like [::1]:9100"],
    ["my host:9100", "not a host name or address"],
    ["http://x:9100", "not a host name or address"],
  ])("%p is a usage error", (spec, why) => {
    expect(failure(() => parseAdminSpec(spec))).toEqual({
      code: 2,
      message: `--admin must be a port or host:port, e.g. 9100 or 0.0.0.0:9100 (${why}), got '${spec}'`,
    });
  });
});

describe("admin server", () => {
  test("a bare port listens on 127.0.0.1", () => {
    const port = adminPort();
    const { server } = start(String(port));
    expect(server).toMatchObject({ url: `http://127.0.0.1:${port}`, hostname: "127.0.0.1", port });
  });

  test("GET /healthz is 200 while the process answers, even while shutting down", async () => {
    const { server, actions } = start(String(adminPort()));
    expect(await get(`${server.url}/healthz`)).toMatchObject({ status: 200, body: "ok\n" });
    actions.shuttingDown = true;
    expect((await get(`${server.url}/healthz`)).status).toBe(200);
  });

  test("GET /readyz: 503 before any worker is ready, 200 with one, 503 while shutting down", async () => {
    const { server, actions } = start(
      String(adminPort()),
      fakeActions({ workersReady: 0, phase: "booting" }),
    );
    const readyz = `${server.url}/readyz`;
    expect(await get(readyz)).toMatchObject({ status: 503, body: "not ready: 0 of 3 workers ready\n" });
    actions.state.workersReady = 1;
    expect(await get(readyz)).toMatchObject({ status: 200, body: "ready: 1 of 3 workers ready\n" });
    actions.shuttingDown = true;
    expect(await get(readyz)).toMatchObject({ status: 503, body: "shutting down\n" });
    actions.shuttingDown = false;
    actions.state.phase = "stopping";
    expect(await get(readyz)).toMatchObject({ status: 503, body: "shutting down\n" });
  });

  test("GET /metrics: Prometheus text with its content type, from the current snapshot", async () => {
    const { server, actions } = start(String(adminPort()));
    const first = await get(`${server.url}/metrics`);
    expect(first.status).toBe(200);
    expect(first.type).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(first.body).toContain("\nsupervisor_workers_configured 3\n");
    expect(first.body).toContain('\nsupervisor_worker_requests_total{slot="0",pid="5001"} 1500\n');
    actions.state.workersConfigured = 4;
    expect((await get(`${server.url}/metrics`)).body).toContain("\nsupervisor_workers_configured 4\n");
  });

  test("HEAD answers without a body; other methods 405; unknown paths 404", async () => {
    const { server } = start(String(adminPort()));
    expect(await get(`${server.url}/healthz`, { method: "HEAD" })).toMatchObject({ status: 200, body: "" });
    expect((await get(`${server.url}/metrics`, { method: "POST" })).status).toBe(405);
    expect(await get(`${server.url}/`)).toMatchObject({
      status: 404,
      body: "not found: try /metrics, /healthz, /readyz\n",
    });
  });

  test("its own port, not shared: a reusePort listener cannot join it, nor a second admin", () => {
    const port = adminPort();
    start(String(port));
    expect(() =>
      Bun.serve({ hostname: "127.0.0.1", port, reusePort: true, fetch: () => new Response() }),
    ).toThrow();
    expect(failure(() => startAdminServer(String(port), fakeActions()))).toEqual({
      code: 3,
      message: `--admin port ${port} on 127.0.0.1 is already in use`,
    });
  });

  test("stop frees the port", async () => {
    const port = adminPort();
    const { server } = start(String(port));
    await server.stop();
    servers.length = 0;
    const again = start(String(port)).server;
    expect((await get(`${again.url}/healthz`)).status).toBe(200);
  });

  test("an address we cannot listen on is a usage error", () => {
    const { code, message } = failure(() => startAdminServer("192.0.2.1:19999", fakeActions()));
    expect(code).toBe(2);
    expect(message).toMatch(/^--admin cannot listen on 192\.0\.2\.1:19999: /);
  });
});
