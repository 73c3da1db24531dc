// Process helpers of the load, chaos and bench scripts (Linux): the tests' own (test/helpers.ts:
// waitFor, startSupervisor, childPids) and /proc readings over src/os/proc.ts, plus wrk's summary.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { readStat, residentBytes } from "../../src/os/proc.ts";
import {
  childPids,
  ensureBinary,
  startSupervisor as startTestSupervisor,
  waitFor,
} from "../../test/helpers.ts";

export { childPids, waitFor };
export const ROOT = join(import.meta.dir, "..", "..");

export const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

export const rssKiB = (pid: number) => Math.round((residentBytes(pid) ?? 0) / 1024);

/** utime + stime in clock ticks (1/100 s on Linux). */
export function cpuTicks(pid: number): number {
  const stat = readStat(pid);
  return stat ? stat.utime + stat.stime : 0;
}

/** Start the compiled supervisor (built when missing or older than the source) with test/helpers.ts's
 * startSupervisor, and wait for its ready line; `stop()` sends TERM, waits, then kills what is left of
 * its process group. */
export async function startSupervisor(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
) {
  const sup = startTestSupervisor(["run", ...args], {
    binary: ensureBinary(),
    cwd: options.cwd ?? ROOT,
    ...(options.env ? { env: options.env } : {}),
  });
  await waitFor(() => sup.output().includes("ready:"), "the supervisor to be ready");
  return {
    proc: sup.proc,
    output: sup.output,
    workers: sup.workers,
    async stop() {
      sup.proc.kill("SIGTERM");
      const code = await sup.exited;
      await sup[Symbol.asyncDispose]();
      return code;
    },
  };
}

/** wrk's summary: the one parser of it (load, chaos and every bench script). Counts it did not print
 * are 0; `readErrors` apart, as a connection-per-request run counts them differently. */
export function parseWrk(out: string) {
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    requests: num(/(\d+) requests in/),
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    socketErrors: socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    readErrors: socket ? Number(socket[2]) : 0,
    /** 99th percentile latency in ms, when wrk ran with --latency. */
    p99Ms: latencyMs(/^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out)),
    socketDetail: socket?.[0] ?? "Socket errors: none",
    /** wrk's error lines, on one line, when there were any. */
    errorLines: out
      .match(/^\s*(Socket errors|Non-2xx).*$/gm)
      ?.join("; ")
      .replace(/\s+/g, " "),
  };
}

function latencyMs(m: RegExpExecArray | null): number | undefined {
  if (!m) return undefined;
  const scale = { us: 0.001, ms: 1, s: 1000 }[m[2] as "us" | "ms" | "s"];
  return Number(m[1]) * scale;
}
