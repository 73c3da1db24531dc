// Small /proc readers and process helpers shared by the load and chaos scripts (Linux).
import { readdirSync } from "node:fs";
import { childProcesses, readStat, residentBytes } from "../../src/os/proc.ts";

export const ROOT = new URL("../..", import.meta.url).pathname;

/** Live (non-zombie) children of `pid`. */
export const childPids = (pid: number) =>
  childProcesses(pid)
    .filter((child) => child.state !== "Z")
    .map((child) => child.pid);

export const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

export const rssKiB = (pid: number) => Math.round((residentBytes(pid) ?? 0) / 1024);

/** utime + stime in clock ticks (1/100 s on Linux). */
export function cpuTicks(pid: number): number {
  const stat = readStat(pid);
  return stat ? stat.utime + stat.stime : 0;
}

export async function waitFor<T>(check: () => T, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const value = check();
    if (value) return value as NonNullable<T>;
    await Bun.sleep(10);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Start the compiled supervisor (built if missing) in its own process group; output is collected. */
export async function startSupervisor(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
) {
  const binary = `${ROOT}dist/supervisor`;
  if (!(await Bun.file(binary).exists())) {
    await Bun.$`bun ${ROOT}scripts/build.ts`.quiet();
  }
  const proc = Bun.spawn([binary, "run", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
  });
  let output = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) output += new TextDecoder().decode(chunk);
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  await waitFor(() => output.includes("ready:"), "the supervisor to be ready");
  return {
    proc,
    output: () => output,
    workers: () => childPids(proc.pid),
    async stop() {
      proc.kill("SIGTERM");
      const code = await proc.exited;
      try {
        process.kill(-proc.pid, "SIGKILL");
      } catch {
        // the group is already gone
      }
      return code;
    },
  };
}

/** Parse wrk's summary. */
export function parseWrk(out: string) {
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: num(/(\d+) requests in/),
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    socketErrors: socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    /** 99th percentile latency in ms, when wrk ran with --latency. */
    p99Ms: latencyMs(/^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out)),
    socketDetail: socket?.[0] ?? "Socket errors: none",
  };
}

function latencyMs(m: RegExpExecArray | null): number | undefined {
  if (!m) return undefined;
  const scale = { us: 0.001, ms: 1, s: 1000 }[m[2] as "us" | "ms" | "s"];
  return Number(m[1]) * scale;
}
