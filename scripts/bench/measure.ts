// What scripts/bench.ts measures: which worker answers (/pid), load with wrk or one connection per
// request (scripts/bench/close-load.ts), and a manager's CPU time and memory from /proc
// (src/os/proc.ts, plus the two files only the benchmark reads: schedstat and smaps_rollup).

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { descendants, readStat, residentBytes } from "../../src/os/proc.ts";
import { parseWrk } from "../lib/proc.ts";
import { type BenchOptions, benchDir, bun, HOST, log, WRK } from "./options.ts";

export interface LoadResult {
  rps: number;
  p99: number;
  requests: number;
  failed: number;
  /** wrk's error lines, when there were any. */
  errors?: string;
}

/** One request on a fresh connection to /pid; the worker's pid, or undefined on any failure. */
export async function askPid(port: number, timeoutMs: number): Promise<number | undefined> {
  try {
    const res = await fetch(`http://${HOST}:${port}/pid`, {
      headers: { connection: "close" },
      keepalive: false,
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (res.status !== 200) return undefined;
    const pid = Number((await res.text()).split(/\s+/)[1]);
    return Number.isInteger(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The pids that answer /pid: up to 400 fresh connections, or until `n` distinct ones answered. */
export async function collectPids(port: number, n: number): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < 400 && pids.size < n; i++) {
    const pid = await askPid(port, 1000);
    if (pid !== undefined) pids.add(pid);
  }
  return pids;
}

export async function wrk(
  opts: BenchOptions,
  url: string,
  seconds: number,
  close: boolean,
): Promise<LoadResult> {
  const args = [
    WRK as string,
    `-t${opts.wrkThreads}`,
    `-c${opts.wrkConns}`,
    `-d${seconds}s`,
    "--latency",
    ...(close ? ["-H", "Connection: close"] : []),
    url,
  ];
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "pipe" });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  return loadResult(out + err, close);
}

/** Connection-per-request load with exact failure counts (scripts/bench/close-load.ts). */
export async function closeLoad(opts: BenchOptions, port: number, seconds: number): Promise<LoadResult> {
  const proc = Bun.spawn(
    [bun, join(benchDir, "close-load.ts"), String(port), String(seconds), String(opts.wrkConns)],
    {
      stdout: "pipe",
      stderr: "inherit",
    },
  );
  const out = await new Response(proc.stdout).text();
  await proc.exited;
  try {
    const r = JSON.parse(out) as { requests: number; failed: number; errors: Record<string, number> };
    if (r.failed) log(`    close-load failures: ${JSON.stringify(r.errors)}`);
    return { rps: r.requests / seconds, p99: Number.NaN, requests: r.requests + r.failed, failed: r.failed };
  } catch {
    return { rps: Number.NaN, p99: Number.NaN, requests: Number.NaN, failed: Number.NaN };
  }
}

/** wrk's summary as a LoadResult: NaN where wrk printed none. With `Connection: close`, Bun closes
 * without a `Connection: close` response header, so wrk logs one "read" socket error per request:
 * read errors are not counted as failures then (close-load.ts counts those runs exactly). */
function loadResult(text: string, close: boolean): LoadResult {
  const w = parseWrk(text);
  const summarized = /Requests\/sec:/.test(text);
  return {
    rps: summarized ? w.rps : Number.NaN,
    p99: w.p99Ms ?? Number.NaN,
    requests: summarized ? w.requests : Number.NaN,
    failed: w.socketErrors - (close ? w.readErrors : 0) + w.non2xx,
    ...(w.errorLines ? { errors: w.errorLines } : {}),
  };
}

/** The manager's clock ticks (/proc/PID/stat utime + stime, threads gone included, 10 ms each) and
 * each of its threads' CPU ns and context switches. */
export function cpuOf(pid: number): { ticks: number; threads: ThreadStats } {
  const stat = readStat(pid);
  return { ticks: stat ? stat.utime + stat.stime : 0, threads: threadStats(pid) };
}

export type ThreadStats = Map<string, { ns: number; switches: number }>;

/** CPU ns (schedstat) and context switches of every thread of `pid`, by thread id. */
export function threadStats(pid: number): ThreadStats {
  const stats: ThreadStats = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
      let switches = 0;
      for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm))
        switches += Number(m[1]);
      stats.set(tid, { ns, switches });
    } catch {
      // the thread ended
    }
  }
  return stats;
}

/** What the threads alive at the end did since `before` (a thread started since counts from 0; one
 * that ended in between is lost: Linux keeps no per-thread figures of a thread gone). */
export function since(before: ThreadStats, after: ThreadStats): { ns: number; switches: number } {
  let ns = 0;
  let switches = 0;
  for (const [tid, a] of after) {
    const b = before.get(tid);
    ns += a.ns - (b?.ns ?? 0);
    switches += a.switches - (b?.switches ?? 0);
  }
  return { ns, switches };
}

/** RSS and PSS (kB) of one process; 0 when it is gone. */
export function processMemory(pid: number): { rss: number; pss: number } {
  try {
    const smaps = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    return {
      rss: Math.round((residentBytes(pid) ?? 0) / 1024),
      pss: Number(/^Pss:\s+(\d+) kB/m.exec(smaps)?.[1] ?? 0),
    };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

/** RSS and PSS (kB) of the manager and all its descendants. */
export function treeMemory(pid: number): { rss: number; pss: number } {
  let rss = 0;
  let pss = 0;
  for (const p of [pid, ...descendants(pid).map((d) => d.pid)]) {
    const m = processMemory(p);
    rss += m.rss;
    pss += m.pss;
  }
  return { rss, pss };
}
