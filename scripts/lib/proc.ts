// Small /proc readers and process helpers shared by the load and chaos scripts (Linux).
import { readdirSync, readFileSync } from "node:fs";

export const ROOT = new URL("../..", import.meta.url).pathname;

/** Live (non-zombie) children of `pid`. */
export function childPids(pid: number): number[] {
  const kids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields && Number(fields[1]) === pid && fields[0] !== "Z") kids.push(Number(entry));
  }
  return kids;
}

/** Fields of /proc/PID/stat after the command name: [state, ppid, ...]; undefined when gone. */
export function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

export const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

export function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
}

/** utime + stime in clock ticks (1/100 s on Linux). */
export function cpuTicks(pid: number): number {
  const f = statFields(pid);
  return f ? Number(f[11]) + Number(f[12]) : 0;
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
export async function startSupervisor(args: string[]) {
  const binary = `${ROOT}dist/supervisor`;
  if (!(await Bun.file(binary).exists())) {
    await Bun.$`bun ${ROOT}scripts/build.ts`.quiet();
  }
  const proc = Bun.spawn([binary, "run", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    cwd: ROOT,
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
    socketDetail: socket?.[0] ?? "Socket errors: none",
  };
}
