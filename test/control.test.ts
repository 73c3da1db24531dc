// The control socket with real Unix sockets against a fake ControlActions in this process, and the
// control commands as a user runs them (the CLI as a child process). No supervisor is started.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { countFromRawArgs, parseScale } from "../src/commands/scale.ts";
import { toTarget } from "../src/commands/target.ts";
import { connectControl, listSupervisors } from "../src/control/client.ts";
import { controlDir, defaultControlPath } from "../src/control/paths.ts";
import { type ControlServer, startControlServer } from "../src/control/server.ts";
import { renderStatus } from "../src/control/status-table.ts";
import type { ControlActions } from "../src/control/types.ts";
import { SupervisorError } from "../src/core/exit-codes.ts";
import { fakeActions, SNAPSHOT } from "./fake-control.ts";
import { ROOT, reachableBinary, removeReachableBinary, waitFor } from "./helpers.ts";

afterAll(removeReachableBinary);

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

// Each test gets its own runtime dir, so no real supervisor of this user is ever found or touched.
let runtime: string;
let env: Record<string, string | undefined>;
const servers: ControlServer[] = [];

function freshRuntime() {
  runtime = mkdtempSync(join(tmpdir(), "sv-ctl-"));
  env = { ...process.env, XDG_RUNTIME_DIR: runtime };
}
freshRuntime();

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
  rmSync(runtime, { recursive: true, force: true });
  freshRuntime();
});

afterAll(() => rmSync(runtime, { recursive: true, force: true }));

async function serve(port: number, actions: ControlActions = fakeActions(), path?: string) {
  const server = await startControlServer(path ?? defaultControlPath(port, env), actions, env);
  servers.push(server);
  return server;
}

/** The fake supervisor "serving" `port`: its snapshot's address names that port. */
const supervisorOn = (port: number, pid: number) => fakeActions({ pid, address: `http://0.0.0.0:${port}` });

/** What a thrown SupervisorError says and exits with. */
async function failure(promise: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof SupervisorError) return { code: error.exitCode, message: error.message };
    throw error;
  }
  throw new Error("expected a SupervisorError, but it succeeded");
}

/** A socket file nobody listens on: bound by a child that is then SIGKILLed (no cleanup). */
async function staleSocket(path: string): Promise<void> {
  const child = Bun.spawn(
    [
      process.execPath,
      "-e",
      `Bun.serve({ unix: ${JSON.stringify(path)}, fetch: () => new Response("") }); process.kill(process.pid, "SIGKILL");`,
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  await child.exited;
  expect(statSync(path).isSocket()).toBe(true);
}

/** `supervisor ...args` from source, to its exit; with a prefix (another user), the compiled binary at a
 * path every user can reach (the checkout may be in a private directory). */
async function cli(args: string[], extraEnv: Record<string, string> = {}, prefix: string[] = []) {
  const supervisor =
    prefix.length > 0 ? [reachableBinary()] : [process.execPath, join(ROOT, "src", "cli.ts")];
  await using proc = Bun.spawn([...prefix, ...supervisor, ...args], {
    cwd: prefix.length > 0 ? tmpdir() : ROOT,
    env: { ...env, ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

describe("control socket", () => {
  test("round trip: status, reload, scale, stop", async () => {
    const actions = supervisorOn(3000, 4242);
    const server = await serve(3000, actions);
    expect(server.path).toBe(join(runtime, `supervisor-${process.getuid?.()}`, "3000.sock"));
    const client = await connectControl({}, env);
    expect(client.path).toBe(server.path);
    expect(await client.status()).toEqual(actions.state);
    expect(await client.reload()).toEqual({
      ok: true,
      message: "reload finished: 3 workers replaced in 12 ms",
    });
    expect(await client.scale(1, true)).toEqual({ ok: true, message: "scaled to 4 workers" });
    expect(await client.scale(-9, true)).toEqual({
      ok: false,
      message: "cannot scale to -5 workers: at least 1 is needed",
    });
    expect(await client.stop()).toEqual({ ok: true, message: "stopped" });
    expect(actions.calls).toEqual(["reload", "scale 1 true", "scale -9 true", "stop"]);
  });

  test("a private directory (0700) and socket (0600), even under a permissive umask", async () => {
    const umask = process.umask(0);
    try {
      const server = await serve(3000);
      expect(statSync(server.path).mode & 0o777).toBe(0o600);
      expect(statSync(controlDir(env)).mode & 0o777).toBe(0o700);
    } finally {
      process.umask(umask);
    }
  });

  test("an existing control directory of ours that others can read is tightened to 0700", async () => {
    mkdirSync(controlDir(env), { mode: 0o755 });
    chmodSync(controlDir(env), 0o755);
    await serve(3000);
    expect(statSync(controlDir(env)).mode & 0o777).toBe(0o700);
  });

  test("stop removes the socket", async () => {
    const server = await serve(3000);
    await server.stop();
    expect(existsSync(server.path)).toBe(false);
    await server.stop(); // twice is fine
  });

  test("actions answer when done, not before", async () => {
    const actions = fakeActions();
    let open = () => {};
    actions.gate = new Promise((resolve) => {
      open = resolve;
    });
    const server = await serve(3000, actions);
    let settled = false;
    const answer = (await connectControl({ control: server.path }, env)).reload().finally(() => {
      settled = true;
    });
    await waitFor(() => actions.calls.includes("reload"), "the reload to be asked for");
    expect(settled).toBe(false);
    open();
    expect((await answer).ok).toBe(true);
  });

  test("the answer to stop is delivered even when the server is stopped right after", async () => {
    // What the supervisor does: finish the shutdown (the action settles), then close the socket.
    const actions = fakeActions();
    let open = () => {};
    actions.gate = new Promise((resolve) => {
      open = resolve;
    });
    const server = await serve(3000, actions);
    const answer = (await connectControl({}, env)).stop();
    await waitFor(() => actions.calls.includes("stop"), "the stop to be asked for");
    open();
    await server.stop();
    expect(await answer).toEqual({ ok: true, message: "stopped" });
    expect(existsSync(server.path)).toBe(false);
  });

  test("a stale socket (its supervisor was SIGKILLed) is replaced", async () => {
    const path = defaultControlPath(3000, env);
    mkdirSync(controlDir(env), { mode: 0o700 });
    await staleSocket(path);
    expect(await listSupervisors(controlDir(env))).toEqual([]); // not counted as running
    const server = await serve(3000, supervisorOn(3000, 777));
    expect((await (await connectControl({}, env)).status()).pid).toBe(777);
    expect(statSync(server.path).mode & 0o777).toBe(0o600);
  });

  test("a live socket is refused, naming the supervisor's pid, and keeps working", async () => {
    const first = await serve(3000, supervisorOn(3000, 1111));
    const { code, message } = await failure(startControlServer(first.path, fakeActions(), env));
    expect(code).toBe(3);
    expect(message).toContain(`control socket ${first.path} is in use: a supervisor (pid 1111)`);
    expect((await (await connectControl({ port: 3000 }, env)).status()).pid).toBe(1111);
  });

  test("a file that is not a socket is refused and left alone", async () => {
    mkdirSync(controlDir(env), { mode: 0o700 });
    const path = defaultControlPath(3000, env);
    writeFileSync(path, "not a socket");
    const { code, message } = await failure(startControlServer(path, fakeActions(), env));
    expect(code).toBe(2);
    expect(message).toBe(`control socket path exists and is not a socket: ${path}`);
    expect(existsSync(path)).toBe(true);
  });

  test("a path too long for a Unix socket is a usage error", async () => {
    const path = join(runtime, "x".repeat(120), "a.sock");
    const { code, message } = await failure(startControlServer(path, fakeActions(), env));
    expect(code).toBe(2);
    expect(message).toMatch(/^control socket path is too long for a Unix socket \(\d+ bytes, at most 107\)/);
  });

  test("an explicit --control path in another directory works", async () => {
    const path = join(runtime, "app", "ctl.sock");
    const server = await serve(0, supervisorOn(3000, 2222), path);
    expect(server.path).toBe(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect((await (await connectControl({ control: path }, env)).status()).pid).toBe(2222);
  });

  test("bad requests get 404, 405 and 400 with a message", async () => {
    const server = await serve(3000);
    const ask = async (route: string, init: RequestInit = {}) => {
      const res = await fetch(`http://localhost${route}`, { ...init, unix: server.path });
      return [res.status, ((await res.json()) as { message: string }).message];
    };
    expect(await ask("/nope")).toEqual([404, "no such control route: /nope"]);
    expect(await ask("/reload")).toEqual([405, "/reload takes POST"]);
    expect(await ask("/status", { method: "POST" })).toEqual([405, "/status takes GET"]);
    const usage = 'body must be JSON {"workers": <whole number>, "relative": <boolean>}';
    expect(await ask("/scale", { method: "POST", body: "four" })).toEqual([400, usage]);
    expect(await ask("/scale", { method: "POST", body: '{"workers": 1.5}' })).toEqual([400, usage]);
    expect(await ask("/scale", { method: "POST", body: '{"workers": 2, "relative": "yes"}' })).toEqual([
      400,
      usage,
    ]);
  });

  test("an action that throws is a 500 with a message, and the client says so (exit 1)", async () => {
    const actions = fakeActions();
    actions.reload = () => Promise.reject(new Error("boom"));
    await serve(3000, actions);
    const { code, message } = await failure((await connectControl({}, env)).reload());
    expect(code).toBe(1);
    expect(message).toBe("the supervisor refused the request: internal error: boom");
  });
});

describe("finding the supervisor", () => {
  test("none running: a usage error naming the directory (also when it does not exist)", async () => {
    const dir = controlDir(env);
    expect(await failure(connectControl({}, env))).toEqual({
      code: 2,
      message: `no running supervisor found (looked in ${dir}; another user's, e.g. a system service: pass --pidfile <its pidfile>)`,
    });
    mkdirSync(dir, { mode: 0o700 });
    await staleSocket(join(dir, "3000.sock"));
    expect(await failure(connectControl({}, env))).toEqual({
      code: 2,
      message: `no running supervisor found (looked in ${dir}; another user's, e.g. a system service: pass --pidfile <its pidfile>)`,
    });
  });

  test("several running: the error lists each with port and pid; --port picks one", async () => {
    const a = await serve(3000, supervisorOn(3000, 1111));
    const b = await serve(3001, supervisorOn(3001, 2222));
    const { code, message } = await failure(connectControl({}, env));
    expect(code).toBe(2);
    expect(message).toBe(
      `2 supervisors are running: port 3000 (pid 1111, ${a.path}); port 3001 (pid 2222, ${b.path}); pass --port <port> or --control <path> to pick one`,
    );
    expect((await (await connectControl({ port: 3001 }, env)).status()).pid).toBe(2222);
    expect((await (await connectControl({ control: a.path }, env)).status()).pid).toBe(1111);
  });

  test("--port with nobody there, --control at a missing path, both flags", async () => {
    const path = defaultControlPath(3999, env);
    expect(await failure((await connectControl({ port: 3999 }, env)).status())).toEqual({
      code: 2,
      message: `no running supervisor at ${path} (no such socket)`,
    });
    const stale = join(runtime, "stale.sock");
    await staleSocket(stale);
    expect(await failure((await connectControl({ control: stale }, env)).reload())).toEqual({
      code: 2,
      message: `no supervisor is answering at ${stale} (a socket left by one that exited?)`,
    });
    expect((await failure(connectControl({ port: 1, control: stale }, env))).code).toBe(2);
  });

  test("a control directory writable by others is refused by server and client", async () => {
    const dir = controlDir(env);
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const server = await failure(startControlServer(defaultControlPath(3000, env), fakeActions(), env));
    expect(server).toEqual({
      code: 1,
      message: `refusing control directory ${dir}: it is writable by group or others (remove it, or pass --control <path>)`,
    });
    expect((await failure(connectControl({}, env))).message).toBe(server.message);
    expect((await failure(connectControl({ port: 3000 }, env))).message).toBe(server.message);
  });

  test.skipIf(!isRoot)("a control directory owned by another user is refused (root: chown)", async () => {
    const dir = controlDir(env);
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, NOBODY, NOBODY);
    const { code, message } = await failure(
      startControlServer(defaultControlPath(3000, env), fakeActions(), env),
    );
    expect(code).toBe(1);
    expect(message).toBe(
      `refusing control directory ${dir}: it belongs to uid ${NOBODY}, not to us (${process.getuid?.()}) (remove it, or pass --control <path>)`,
    );
  });
});

describe("another user is refused", () => {
  const setpriv = Bun.which("setpriv");
  const asNobody = ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"];

  test.skipIf(!isRoot || !setpriv)(
    "by the socket's own mode (0600) where the directory lets them in",
    async () => {
      // A directory others may enter (0711), so only the socket's mode stands in the way.
      const dir = join(runtime, "open");
      mkdirSync(dir);
      chmodSync(runtime, 0o711);
      chmodSync(dir, 0o711);
      const server = await serve(0, fakeActions(), join(dir, "ctl.sock"));
      const { code, stdout, stderr } = await cli(
        ["status", "--control", server.path],
        { BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0", HOME: "/tmp" },
        asNobody,
      );
      expect(stdout).toBe("");
      expect(stderr).toBe(
        `supervisor: permission denied on control socket ${server.path}: it belongs to another user (run the command as that user)\n`,
      );
      expect(code).toBe(1);
    },
  );

  test.skipIf(!isRoot || !setpriv)(
    "by the private directory (0700), even given the socket's path",
    async () => {
      chmodSync(runtime, 0o711);
      const server = await serve(3000);
      const { code, stderr } = await cli(
        ["reload", "--control", server.path],
        { BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0", HOME: "/tmp" },
        asNobody,
      );
      expect(stderr).toBe(
        `supervisor: permission denied on control socket ${server.path}: it belongs to another user (run the command as that user)\n`,
      );
      expect(code).toBe(1);
    },
  );

  test("by file mode: the socket and its directory give nothing to group or others", async () => {
    const server = await serve(3000);
    expect(statSync(server.path).mode & 0o077).toBe(0);
    expect(statSync(controlDir(env)).mode & 0o077).toBe(0);
  });
});

describe("commands", () => {
  test("status: a table of workers with totals", async () => {
    await serve(3000, supervisorOn(3000, 4242));
    const { code, stdout, stderr } = await cli(["status"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toBe(renderStatus({ ...SNAPSHOT, address: "http://0.0.0.0:3000" }));
    expect(stdout).toMatch(/^SLOT +PID +STATE +UPTIME +RESTARTS +RSS +REQUESTS$/m);
    expect(stdout).toMatch(/^3 +- +starting +- +0 +- +0$/m);
    expect(stdout).toMatch(/^0 +5001 +ready +2 min 00 s +0 +50\.0 MiB +1500$/m);
    expect(stdout).toMatch(/^total +3 +90\.0 MiB +2200$/m);
  });

  test("status --json prints the snapshot", async () => {
    const actions = supervisorOn(3000, 4242);
    await serve(3000, actions);
    const { code, stdout } = await cli(["status", "--json", "-p", "3000"]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual(actions.state);
  });

  test.each([
    [["scale", "-1"], "scale -1 true", "scaled to 2 workers"],
    [["scale", "+2"], "scale 2 true", "scaled to 5 workers"],
    [["scale", "4"], "scale 4 false", "scaled to 4 workers"],
    [["scale", "--port", "3000", "-1"], "scale -1 true", "scaled to 2 workers"],
    [["scale", "--", "-1"], "scale -1 true", "scaled to 2 workers"],
    [["reload"], "reload", "reload finished: 3 workers replaced in 12 ms"],
    [["stop"], "stop", "stopped"],
  ])("%p", async (args, call, message) => {
    const actions = supervisorOn(3000, 4242);
    await serve(3000, actions);
    const { code, stdout, stderr } = await cli(args);
    expect(stderr).toBe("");
    expect(stdout).toBe(`${message}\n`);
    expect(code).toBe(0);
    expect(actions.calls).toEqual([call]);
  });

  test("an action that does not succeed: its message, exit 1", async () => {
    await serve(3000);
    const { code, stdout, stderr } = await cli(["scale", "-3"]);
    expect(stdout).toBe("");
    expect(stderr).toBe("supervisor: cannot scale to 0 workers: at least 1 is needed\n");
    expect(code).toBe(1);
  });

  test.each([
    [["scale"], "supervisor: missing the worker count, e.g. supervisor scale 4, scale +1 or scale -1"],
    [
      ["scale", "0"],
      "supervisor: the worker count must be a whole number from 1 to 1024, or a change such as +1 or -1, got '0'",
    ],
    [
      ["scale", "many"],
      "supervisor: the worker count must be a whole number from 1 to 1024, or a change such as +1 or -1, got 'many'",
    ],
    [["status", "--port", "http"], "supervisor: -p/--port must be a port number from 1 to 65535, got 'http'"],
    [["stop", "--pid", "3"], "supervisor: unknown option '--pid' (see --help)"],
    [
      ["status"],
      "supervisor: no running supervisor found (looked in <dir>; another user's, e.g. a system service: pass --pidfile <its pidfile>)",
    ],
  ])("usage: %p", async (args, line) => {
    const { code, stdout, stderr } = await cli(args);
    expect(stdout).toBe("");
    expect(stderr).toBe(`${line.replace("<dir>", controlDir(env))}\n`);
    expect(code).toBe(2);
  });
});

describe("argument parsing", () => {
  test.each([
    ["4", { workers: 4, relative: false }],
    ["+1", { workers: 1, relative: true }],
    ["-1", { workers: -1, relative: true }],
    ["1024", { workers: 1024, relative: false }],
  ])("parseScale(%p)", (raw, expected) => {
    expect(parseScale(raw)).toEqual(expected);
  });

  test.each(["0", "+0", "-0", "1025", "+1025", "1.5", "four", "", "--1", "4x"])(
    "parseScale(%p) is a usage error",
    (raw) => {
      expect(() => parseScale(raw)).toThrow(/the worker count must be a whole number/);
    },
  );

  test.each([
    [["-1"], "-1"],
    [["--port", "3000", "+1"], "+1"],
    [["-p", "3000", "4"], "4"],
    [["--port=3000", "-2"], "-2"],
    [["--control", "/x.sock", "--", "-1"], "-1"],
    [["--port", "3000"], undefined],
  ])("countFromRawArgs(%p)", (raw, expected) => {
    expect(countFromRawArgs(raw)).toBe(expected);
  });

  test.each(["0", "65536", "3000.5", "x", ""])("--port %p is a usage error", (port) => {
    expect(() => toTarget({ port })).toThrow(/-p\/--port must be a port number from 1 to 65535/);
  });
});
