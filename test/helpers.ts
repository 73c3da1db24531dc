// Real processes, real sockets: start the supervisor as a user would and wait on conditions with a
// deadline, never on bare sleeps. Every supervisor started here is killed (with its process group)
// when the test's `await using` scope ends, and has its own runtime directory (XDG_RUNTIME_DIR, for
// its control socket), removed then too: a SIGKILLed supervisor cannot remove its socket itself.

import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { childProcesses, isAlive } from "../src/os/proc.ts";

export const ROOT = join(import.meta.dir, "..");
export const FIXTURES = join(import.meta.dir, "fixtures");
export const BINARY = join(ROOT, "dist", "supervisor");
export const fixture = (name: string) => join(FIXTURES, name);
/** One word of a shell command line (tmux, script(1)), quoted: the checkout path may hold a space. */
export const shellQuote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;

/** Build dist/supervisor when it is missing or older than any source file (as `bun run build` does). */
export function ensureBinary(): string {
  const built = existsSync(BINARY) ? statSync(BINARY).mtimeMs : 0;
  const newest = Math.max(...sourceFiles(join(ROOT, "src")).map((f) => statSync(f).mtimeMs));
  if (built < newest) {
    const build = Bun.spawnSync([process.execPath, join(ROOT, "scripts", "build.ts")], {
      cwd: ROOT,
      stderr: "pipe",
    });
    if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
  }
  return BINARY;
}

/**
 * A compiled binary that reports `version` (another release, for upgrade tests): this checkout's
 * src/ built in a temp dir whose package.json says that version. Returns the binary's path; the
 * caller removes its directory (`join(path, "..", "..")`).
 */
export function buildWithVersion(version: string): string {
  const dir = mkdtempSync(join(tmpdir(), "sv-release-"));
  cpSync(join(ROOT, "src"), join(dir, "src"), { recursive: true });
  cpSync(join(ROOT, "scripts", "build.ts"), join(dir, "scripts", "build.ts"));
  cpSync(join(ROOT, "tsconfig.json"), join(dir, "tsconfig.json"));
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ ...pkg, version }));
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  const out = join(dir, "dist", "supervisor");
  const build = Bun.spawnSync([process.execPath, "scripts/build.ts", out], { cwd: dir, stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
  return out;
}

/**
 * The compiled binary at a path every user can reach, for tests that run something as another user
 * (`nobody`): the checkout may sit in a private (0700) directory, as a fresh `mktemp -d` clone does.
 * A hard link (same file system, no copy) in a 0755 temp directory; a copy where linking fails.
 * The binary is also the bun its workers run (BUN_BE_BUN), so nothing else of the checkout is needed.
 */
export function reachableBinary(): string {
  if (reachable) return reachable;
  const dir = mkdtempSync(join(tmpdir(), "sv-bin-"));
  chmodSync(dir, 0o755);
  const path = join(dir, "supervisor");
  try {
    linkSync(ensureBinary(), path);
  } catch {
    copyFileSync(ensureBinary(), path);
    chmodSync(path, 0o755);
  }
  reachable = path;
  return path;
}
let reachable: string | undefined;

/** Remove reachableBinary()'s link (an afterAll of each file that uses it; a later call makes another). */
export function removeReachableBinary(): void {
  if (reachable) rmSync(join(reachable, ".."), { recursive: true, force: true });
  reachable = undefined;
}

/** Run a command as `nobody` (root only, with util-linux's setpriv), with a HOME it may write. */
export const NOBODY = 65534;
export const asNobody = ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"];
export const canRunAsNobody = process.getuid?.() === 0 && Bun.which("setpriv") !== null;
export const nobodyEnv = { HOME: "/tmp", BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0" };

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : [join(dir, e.name)],
  );
}

/** Resident kB of the executable mapping of a process's own binary, from /proc/PID/smaps (what
 * src/os/code-pages.ts unmaps once the workers settle). The path as the process sees it: inside a
 * container, the container's. */
export function residentCodeKb(pid: number): number {
  const exe = readlinkSync(`/proc/${pid}/exe`);
  const lines = readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n");
  const header = lines.findIndex((l) => l.endsWith(` ${exe}`) && l.split(" ")[1] === "r-xp");
  if (header < 0) throw new Error(`no executable mapping of ${exe} in /proc/${pid}/smaps`);
  const rss = lines.slice(header + 1).find((l) => l.startsWith("Rss:"));
  return Number(rss?.split(" ").filter(Boolean)[1]);
}

/** A port nobody listens on now; reusePort workers need a fixed one, so port 0 will not do. */
export function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = probe;
  probe.stop(true);
  return port;
}

/** Poll `check` until it returns a truthy value or the deadline passes (a throw counts as not yet).
 * The one waitFor of the tests and the scripts (scripts/lib/proc.ts hands it on). */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 20,
): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    await Bun.sleep(intervalMs);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ""}`,
  );
}

/** Alive and not a zombie; live (non-zombie) children of a pid. */
export { isAlive };
export const childPids = (pid: number) =>
  childProcesses(pid)
    .filter((child) => child.state !== "Z")
    .map((child) => child.pid);

/** GET with a fresh connection each time, so reusePort spreads requests over workers. */
export async function get(
  port: number,
  path = "/",
  timeoutMs = 3_000,
): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    headers: { connection: "close" },
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, body: await res.text() };
}

/** The worker pid named in a fixture's "pid N" answer. */
export const pidOf = (body: string) => Number(/pid (\d+)/.exec(body)?.[1]);

/** Ask until `n` distinct worker pids have answered. */
export async function distinctPids(port: number, n: number, timeoutMs = 10_000): Promise<Set<number>> {
  const pids = new Set<number>();
  await waitFor(
    async () => {
      pids.add(pidOf((await get(port)).body));
      return pids.size >= n;
    },
    `${n} distinct worker pids`,
    timeoutMs,
  );
  return pids;
}

export interface Running extends AsyncDisposable {
  proc: Bun.Subprocess<"ignore", "pipe", "pipe">;
  pid: number;
  port: number;
  /** Everything printed so far, stdout and stderr interleaved. */
  output(): string;
  stdout(): string;
  stderr(): string;
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Worker pids: the supervisor's live children. */
  workers(): number[];
  exited: Promise<number>;
  /** Its XDG_RUNTIME_DIR: pass `{ env: { XDG_RUNTIME_DIR: sup.runtimeDir } }` to reach its control socket. */
  runtimeDir: string;
}

export interface StartOptions {
  /** The compiled binary instead of the source: true for dist/supervisor, or a path to a copy of it. */
  binary?: boolean | string;
  env?: Record<string, string | undefined>;
  cwd?: string;
  port?: number;
  /** Pass no -p flag (to test PORT from the environment). */
  noPortFlag?: boolean;
  /** `args` is a whole command line (e.g. under unshare or taskset), not supervisor arguments. */
  raw?: boolean;
}

/** Start `supervisor run ...args` (from source, or the compiled binary) in its own process group. */
export function startSupervisor(args: string[], options: StartOptions = {}): Running {
  const port = options.port ?? freePort();
  const argv = options.raw
    ? [...args]
    : options.binary
      ? [typeof options.binary === "string" ? options.binary : BINARY, ...args]
      : [process.execPath, join(ROOT, "src", "cli.ts"), ...args];
  const hasPort = args.some((a) => a === "-p" || a === "--port" || a.startsWith("--port="));
  if (args[0] === "run" && !hasPort && !options.noPortFlag) argv.push("-p", String(port));
  const given = options.env?.XDG_RUNTIME_DIR;
  // `{ XDG_RUNTIME_DIR: undefined }` asks for none at all (a system service has none).
  const unset = options.env !== undefined && "XDG_RUNTIME_DIR" in options.env && given === undefined;
  const runtimeDir = given ?? (unset ? "" : mkdtempSync(join(tmpdir(), "sv-runtime-")));
  const proc = Bun.spawn(argv, {
    cwd: options.cwd ?? ROOT,
    env: withoutUndefined({
      ...process.env,
      ...options.env,
      XDG_RUNTIME_DIR: unset ? undefined : runtimeDir,
    }),
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const output = collectOutput(proc.stdout, proc.stderr);
  const pumped = output.done;
  const exited = proc.exited.then(async (code) => {
    await pumped;
    return code;
  });
  return {
    proc,
    pid: proc.pid,
    port,
    output: output.all,
    stdout: output.stdout,
    stderr: output.stderr,
    waitForOutput: (pattern, timeoutMs = 10_000) =>
      waitFor(
        () => pattern.exec(output.all())?.[0],
        `output matching ${pattern}; got:\n${output.all()}`,
        timeoutMs,
      ),
    workers: () => childPids(proc.pid),
    exited,
    runtimeDir,
    async [Symbol.asyncDispose]() {
      const workers = childPids(proc.pid);
      try {
        process.kill(-proc.pid, "SIGKILL");
      } catch {
        // already gone
      }
      for (const pid of workers) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      await exited;
      if (given === undefined && !unset) rmSync(runtimeDir, { recursive: true, force: true });
      removeDeadMetricsDirs();
    },
  };
}

/** A SIGKILLed supervisor (this one, or the successor an upgrade test started) leaves its --admin
 * request-metrics directory (the next supervisor would remove it): a test leaves nothing behind. */
function removeDeadMetricsDirs(): void {
  for (const base of ["/dev/shm", tmpdir()]) {
    try {
      for (const name of readdirSync(base)) {
        const pid = Number(/^supervisor-(\d+)-/.exec(name)?.[1]);
        if (pid && !isAlive(pid)) rmSync(join(base, name), { recursive: true, force: true });
      }
    } catch {
      // no such base here
    }
  }
}

/** Everything a child prints, as it arrives: stdout, stderr and both interleaved; `done` once both end. */
export function collectOutput(
  stdout: ReadableStream<Uint8Array> | undefined,
  stderr: ReadableStream<Uint8Array>,
) {
  let all = "";
  let out = "";
  let err = "";
  const pump = async (stream: ReadableStream<Uint8Array>, isErr: boolean) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      all += text;
      if (isErr) err += text;
      else out += text;
    }
  };
  const done = Promise.all([stdout ? pump(stdout, false) : undefined, pump(stderr, true)]);
  return { all: () => all, stdout: () => out, stderr: () => err, done };
}

/** Run a supervisor command to completion and return its exit code and output. */
export async function runToExit(
  args: string[],
  options: StartOptions = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  await using sup = startSupervisor(args, options);
  const code = await sup.exited;
  return { code, stdout: sup.stdout(), stderr: sup.stderr() };
}

export interface LoadResult {
  ok: number;
  failed: number;
  errors: string[];
  pids: Set<number>;
  /** Successful responses per wall-clock second of the run. */
  perSecond: Map<number, number>;
}

export const emptyLoad = (): LoadResult => ({
  ok: 0,
  failed: 0,
  errors: [],
  pids: new Set(),
  perSecond: new Map(),
});

/**
 * Keep `concurrency` clients sending requests (Bun's fetch keeps connections alive, as browsers and
 * proxies do) until `stop` resolves; count every failure, non-200 or network error alike. Counts go
 * into `result` as they happen, so a test can wait for the load to be under way. `headers` go with
 * every request (`{ connection: "close" }`: one connection per request).
 */
export async function loadUntil(
  port: number,
  stop: Promise<unknown>,
  concurrency = 8,
  {
    path = "/",
    result = emptyLoad(),
    headers,
  }: { path?: string; result?: LoadResult; headers?: Record<string, string> } = {},
): Promise<LoadResult> {
  let done = false;
  void stop.finally(() => {
    done = true;
  });
  const client = async () => {
    while (!done) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}${path}`, {
          ...(headers ? { headers } : {}),
          signal: AbortSignal.timeout(5_000),
        });
        const body = await res.text();
        if (res.status !== 200) throw new Error(`status ${res.status}`);
        result.ok++;
        result.pids.add(pidOf(body));
        const second = Math.floor(Date.now() / 1000);
        result.perSecond.set(second, (result.perSecond.get(second) ?? 0) + 1);
      } catch (error) {
        result.failed++;
        if (result.errors.length < 5) result.errors.push(String(error));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  return result;
}

/** An environment where `undefined` removes a variable (e.g. WEB_CONCURRENCY: undefined). */
function withoutUndefined(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

const canIsolateNetwork =
  process.getuid?.() === 0 &&
  Bun.spawnSync([
    "unshare",
    "--net",
    "/bin/sh",
    "-c",
    "ip link set lo up && sysctl -qw net.ipv4.tcp_migrate_req=1",
  ]).exitCode === 0;

/**
 * Run a test script and parse the JSON line it prints last. As root, in a private network namespace
 * with its own loopback and net.ipv4.tcp_migrate_req=1 (what README tells deployments to set; the
 * machine's own setting is untouched); elsewhere, directly.
 */
export async function runScenario<T>(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<T & { isolated: boolean }> {
  const bun = [process.execPath, script, ...args];
  const argv = canIsolateNetwork
    ? [
        "unshare",
        "--net",
        "/bin/sh",
        "-c",
        'ip link set lo up && sysctl -qw net.ipv4.tcp_migrate_req=1 && exec "$@"',
        "sh",
        ...bun,
      ]
    : bun;
  const proc = Bun.spawn(argv, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  const last = out.trim().split("\n").at(-1) ?? "";
  if (code !== 0 || !last.startsWith("{")) throw new Error(`${script} failed (${code}):\n${out}\n${err}`);
  return { ...(JSON.parse(last) as T), isolated: canIsolateNetwork };
}

/** `clients` sequential clients, each pausing `pauseMs` between requests (steady, not flooding: a
 * refused request is not retried in a tight loop), until `seconds` pass or `maxRequests` are sent. */
export async function steadyLoad(
  port: number,
  clients: number,
  seconds: number,
  pauseMs: number,
  maxRequests: number,
) {
  let ok = 0;
  let failed = 0;
  const end = performance.now() + seconds * 1_000;
  const client = async () => {
    while (performance.now() < end && ok + failed < maxRequests) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5_000) });
        await res.text();
        if (res.status === 200) ok++;
        else failed++;
      } catch {
        failed++;
      }
      await Bun.sleep(pauseMs);
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  return { ok, failed };
}

/** Root can make a cgroup v1 group under `controller` (a directory such as /sys/fs/cgroup/cpu) that
 * has `file`: the real-cgroup tests run only then. */
export function canMakeV1Cgroup(controller: string, file: string): boolean {
  if (process.getuid?.() !== 0 || !existsSync(join(controller, file))) return false;
  const probe = join(controller, `supervisor-probe-${process.pid}`);
  try {
    mkdirSync(probe);
    rmdirSync(probe);
    return true;
  } catch {
    return false;
  }
}
