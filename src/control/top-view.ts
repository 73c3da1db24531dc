// `supervisor top` for people: one frame from two snapshots taken about a second apart. Rates and
// latency quantiles come from the difference between the two (per worker: its own request-metrics
// histogram with --admin, else the request counts its heartbeats report, and no latency).

import { formatDuration } from "../core/format.ts";
import { formatBytes, table } from "./status-table.ts";
import type { HttpStats, Snapshot, WorkerSnapshot } from "./types.ts";

export function renderTop(before: Snapshot, now: Snapshot, elapsedMs: number): string {
  const seconds = Math.max(elapsedMs, 1) / 1000;
  const bounds = now.http?.upperBounds ?? [];
  const previous = new Map(before.workers.map((w) => [w.pid, w]));
  const rows: string[][] = [];
  let totalRate = 0;
  let totalRss = 0;
  let totalRestarts = 0;
  const totalBuckets: number[] = [];
  for (const w of [...now.workers].sort((a, b) => a.slot - b.slot || (a.pid ?? 0) - (b.pid ?? 0))) {
    const old = w.pid === null ? undefined : previous.get(w.pid);
    const delta = old ? difference(old, w) : undefined;
    const rate = delta ? delta.requests / seconds : undefined;
    if (rate !== undefined) totalRate += rate;
    for (const [i, n] of (delta?.buckets ?? []).entries()) totalBuckets[i] = (totalBuckets[i] ?? 0) + n;
    totalRss += w.rssBytes ?? 0;
    totalRestarts += w.restarts;
    rows.push([
      String(w.slot),
      w.pid === null ? "-" : String(w.pid),
      w.state,
      w.pid === null ? "-" : formatDuration(w.uptimeMs),
      rate === undefined ? "-" : rate.toFixed(rate < 10 ? 1 : 0),
      latency(delta?.buckets, bounds, 0.5),
      latency(delta?.buckets, bounds, 0.99),
      w.rssBytes === null ? "-" : formatBytes(w.rssBytes),
      String(w.restarts),
    ]);
  }
  const buckets = totalBuckets.length ? totalBuckets : undefined;
  rows.push([
    "total",
    "",
    "",
    "",
    totalRate.toFixed(totalRate < 10 ? 1 : 0),
    latency(buckets, bounds, 0.5),
    latency(buckets, bounds, 0.99),
    totalRss ? formatBytes(totalRss) : "-",
    String(totalRestarts),
  ]);
  const head = [
    `supervisor pid ${now.pid} · ${now.address} · ${now.phase} · up ${formatDuration(now.uptimeMs)} · v${now.version}`,
    `workers: ${now.workersReady} of ${now.workersConfigured} ready · in flight: ${now.http ? now.http.inFlight : "-"}${
      now.http ? "" : " · latency needs --admin (request metrics)"
    }`,
    "",
  ];
  const header = ["SLOT", "PID", "STATE", "UPTIME", "REQ/S", "P50", "P99", "RSS", "RESTARTS"];
  return `${[...head, ...table(header, rows)].join("\n")}\n`;
}

/** The q-quantile of a non-cumulative histogram (the last bucket is above every bound), interpolated
 * within its bucket as Prometheus' histogram_quantile does; "-" without data. */
export function quantile(buckets: number[], bounds: readonly number[], q: number): number | undefined {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total <= 0) return undefined;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < buckets.length; i++) {
    const n = buckets[i] ?? 0;
    if (below + n >= rank && n > 0) {
      if (i >= bounds.length) return bounds.at(-1); // above the largest bound: say at least that
      const lower = i === 0 ? 0 : (bounds[i - 1] as number);
      return lower + ((bounds[i] as number) - lower) * ((rank - below) / n);
    }
    below += n;
  }
  return bounds.at(-1);
}

// --- internal ---

function difference(old: WorkerSnapshot, now: WorkerSnapshot): { requests: number; buckets?: number[] } {
  if (old.http && now.http) {
    const before = (old.http as HttpStats).buckets;
    const buckets = now.http.buckets.map((n, i) => n - (before[i] ?? 0));
    return { requests: now.http.count - old.http.count, buckets };
  }
  return { requests: Math.max(0, now.requests - old.requests) };
}

/** Inside the first bucket or past the last, interpolation would invent a figure: say "<5ms", ">10s". */
function latency(buckets: number[] | undefined, bounds: readonly number[], q: number): string {
  const value = buckets ? quantile(buckets, bounds, q) : undefined;
  if (value === undefined) return "-";
  const first = bounds[0] ?? 0;
  const last = bounds.at(-1) ?? 0;
  const seconds = (v: number) => (v < 1 ? `${Math.round(v * 1000)}ms` : `${Number(v.toFixed(2))}s`);
  if (value <= first) return `<${seconds(first)}`;
  if (value >= last && (buckets?.at(-1) ?? 0) > 0) return `>${seconds(last)}`;
  return seconds(value);
}
