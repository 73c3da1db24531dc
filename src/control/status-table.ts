// `supervisor status` for people: a summary line, restarts by reason, one row per worker, totals.

import { formatDuration } from "../core/format.ts";
import { RESTART_REASONS } from "../core/types.ts";
import type { Snapshot } from "./types.ts";

export function renderStatus(s: Snapshot): string {
  const restarts = RESTART_REASONS.map((r) => [r, s.restarts[r] ?? 0] as const).filter(([, n]) => n > 0);
  const restartTotal = restarts.reduce((sum, [, n]) => sum + n, 0);
  const lines = [
    `supervisor pid ${s.pid} · ${s.address} · ${s.phase} · up ${formatDuration(s.uptimeMs)} · v${s.version}`,
    `workers: ${s.workersReady} of ${s.workersConfigured} ready · restarts: ${restartTotal}${
      restarts.length ? ` (${restarts.map(([r, n]) => `${r} ${n}`).join(", ")})` : ""
    }`,
    "",
  ];
  const workers = [...s.workers].sort((a, b) => a.slot - b.slot);
  const rows = workers.map((w) => [
    String(w.slot),
    w.pid === null ? "-" : String(w.pid),
    w.state,
    w.pid === null ? "-" : formatDuration(w.uptimeMs),
    String(w.restarts),
    w.rssBytes === null ? "-" : formatBytes(w.rssBytes),
    String(w.requests),
  ]);
  const known = workers.filter((w) => w.rssBytes !== null);
  const total = [
    "total",
    "",
    "",
    "",
    String(sum(workers.map((w) => w.restarts))),
    known.length ? formatBytes(sum(known.map((w) => w.rssBytes ?? 0))) : "-",
    String(sum(workers.map((w) => w.requests))),
  ];
  lines.push(...table(["SLOT", "PID", "STATE", "UPTIME", "RESTARTS", "RSS", "REQUESTS"], [...rows, total]));
  return `${lines.join("\n")}\n`;
}

/** "512 B", "48.2 MiB", "1.50 GiB". */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

// --- internal ---

const RIGHT_ALIGNED_FROM = 3;

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** Columns after STATE hold numbers and are right-aligned. */
export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => {
        const width = widths[i] ?? 0;
        return i >= RIGHT_ALIGNED_FROM ? cell.padStart(width) : cell.padEnd(width);
      })
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)];
}
