// A Snapshot in the Prometheus text exposition format (version 0.0.4): HELP and TYPE before each
// family, base units (bytes, seconds), counters ending in _total.

import { RESTART_REASONS } from "../core/types.ts";
import type { HttpTotals, Snapshot } from "./types.ts";

/** The Content-Type of renderMetrics' text. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export function renderMetrics(s: Snapshot): string {
  const out: string[] = [];
  const family = (name: string, type: "gauge" | "counter", help: string, samples: Sample[]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) out.push(`${name}${formatLabels(labels)} ${formatValue(value)}`);
  };
  const live = s.workers.filter((w) => w.pid !== null).sort((a, b) => a.slot - b.slot);
  const ids = (w: (typeof live)[number]) => ({ slot: String(w.slot), pid: String(w.pid) });

  family("supervisor_up", "gauge", "1 while the supervisor answers.", [[{}, 1]]);
  family("supervisor_build_info", "gauge", "The supervisor's version, as a label.", [
    [{ version: s.version }, 1],
  ]);
  family("supervisor_uptime_seconds", "gauge", "Seconds since the supervisor started.", [
    [{}, s.uptimeMs / 1000],
  ]);
  family("supervisor_workers_configured", "gauge", "Workers the supervisor is asked to keep running.", [
    [{}, s.workersConfigured],
  ]);
  family("supervisor_workers_ready", "gauge", "Workers that are listening and serving.", [
    [{}, s.workersReady],
  ]);
  family(
    "supervisor_workers",
    "gauge",
    "Worker processes by state.",
    (["starting", "ready", "draining"] as const).map((state) => [
      { state },
      s.workers.filter((w) => w.state === state && w.pid !== null).length,
    ]),
  );
  family(
    "supervisor_worker_restarts_total",
    "counter",
    "Workers replaced, by reason.",
    RESTART_REASONS.map((reason) => [{ reason }, s.restarts[reason] ?? 0]),
  );
  family(
    "supervisor_worker_resident_memory_bytes",
    "gauge",
    "Resident set size of each worker process.",
    live.filter((w) => w.rssBytes !== null).map((w) => [ids(w), w.rssBytes ?? 0]),
  );
  family(
    "supervisor_worker_requests_total",
    "counter",
    "Requests served by each worker process.",
    live.map((w) => [ids(w), w.requests]),
  );
  family(
    "supervisor_worker_uptime_seconds",
    "gauge",
    "Seconds since each worker process started.",
    live.map((w) => [ids(w), w.uptimeMs / 1000]),
  );
  if (s.http) renderHttp(s.http, family, out);
  return `${out.join("\n")}\n`;
}

// --- internal ---

type Sample = [Record<string, string>, number];
type Family = (name: string, type: "gauge" | "counter", help: string, samples: Sample[]) => void;

/** The app's requests over all workers: a counter by method and code, a duration histogram, a gauge. */
function renderHttp(http: HttpTotals, family: Family, out: string[]): void {
  family(
    "http_requests_total",
    "counter",
    "Requests the app answered, by method and status code, summed over all workers (those gone included).",
    http.requests.map((r) => [{ method: r.method, code: r.code }, r.count]),
  );
  const name = "http_request_duration_seconds";
  out.push(
    `# HELP ${name} Time from a request's arrival to the app's response, over all workers.`,
    `# TYPE ${name} histogram`,
  );
  let cumulative = 0;
  http.upperBounds.forEach((le, i) => {
    cumulative += http.buckets[i] ?? 0;
    out.push(`${name}_bucket{le="${le}"} ${cumulative}`);
  });
  // Count from the buckets themselves: a scrape that lands mid-update still shows a valid histogram.
  const count = cumulative + (http.buckets[http.upperBounds.length] ?? 0);
  out.push(
    `${name}_bucket{le="+Inf"} ${count}`,
    `${name}_sum ${formatValue(http.sumSeconds)}`,
    `${name}_count ${count}`,
  );
  family("http_requests_in_flight", "gauge", "Requests the app is handling now, over all workers.", [
    [{}, http.inFlight],
  ]);
}

function formatLabels(labels: Record<string, string>): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return pairs.length ? `{${pairs.join(",")}}` : "";
}

/** Backslash, double quote and line feed are the three characters escaped in label values. */
const escapeLabelValue = (value: string) =>
  value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}
