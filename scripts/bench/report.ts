// scripts/bench.ts's markdown report: per N a table of every configuration with its ratio to the
// ceiling in the same round, the manager's idle cost, restarts and reloads, and the goals of issue 6.

import type { LoadResult } from "./measure.ts";
import type { BenchOptions } from "./options.ts";
import type { Config } from "./peers.ts";

export interface RunRecord {
  config: string;
  n: number;
  round: number;
  first200?: number;
  readyLine?: number;
  allPids?: number;
  keepAlive?: LoadResult;
  close?: LoadResult;
  json?: LoadResult;
  rssKb?: number;
  pssKb?: number;
}
export interface ExtraRecord {
  config: string;
  n: number;
  idleCpuPct?: number;
  idleTicks?: number;
  managerRssKb?: number;
  managerPssKb?: number;
  restartMs: number[];
  restartFailedProbes: number;
  reload?: { keepAlive?: LoadResult; close?: LoadResult; reloadMs: number[] };
}

export interface Results {
  opts: BenchOptions;
  runs: RunRecord[];
  extras: ExtraRecord[];
  skipped: string[];
}

export function renderReport(configs: Config[], { opts, runs, extras, skipped }: Results): string {
  const out: string[] = [];
  const ceiling = "ceiling";
  out.push(
    `Each cell: median over ${opts.rounds} rounds, then in brackets the median over rounds of (this / ceiling in the same round). ` +
      `wrk -t${opts.wrkThreads} -c${opts.wrkConns}, ${opts.dur} s per run; p99 in ms. "ready" = the manager's own ready line ` +
      `(supervisor, ceiling launcher), else (*) the first moment all N pids had answered. RSS and PSS: the manager and all its descendants, after the load.`,
  );
  for (const n of opts.ns) {
    out.push("", `### N = ${n}`, "");
    out.push(
      "| config | req/s keep-alive | p99 | req/s conn-per-request | p99 | JSON req/s keep-alive | p99 | first 200 ms | all ready ms | RSS MB | PSS MB |",
    );
    out.push("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (const cfg of configs) {
      const mine = runs.filter((r) => r.config === cfg.name && r.n === n);
      const base = runs.filter((r) => r.config === ceiling && r.n === n);
      const cell = (get: (r: RunRecord) => number | undefined, digits = 0) => {
        const values = mine.map(get).filter(isNum);
        if (!values.length) return "–";
        const ratios = mine
          .map((r) => {
            const b = base.find((x) => x.round === r.round);
            const v = get(r);
            const bv = b ? get(b) : undefined;
            return isNum(v) && isNum(bv) && bv > 0 ? v / bv : undefined;
          })
          .filter(isNum);
        const ratio = ratios.length ? ` (${median(ratios).toFixed(2)}×)` : "";
        return `${fmt(median(values), digits)}${ratio}`;
      };
      const ready = (r: RunRecord) => r.readyLine ?? r.allPids;
      out.push(
        `| ${cfg.name} | ${cell((r) => r.keepAlive?.rps)} | ${cell((r) => r.keepAlive?.p99, 2)} | ${cell((r) => r.close?.rps)} | ${cell((r) => r.close?.p99, 2)} | ` +
          `${cell((r) => r.json?.rps)} | ${cell((r) => r.json?.p99, 2)} | ${cell((r) => r.first200)} | ${cell(ready)}${cfg.readyLine ? "" : " *"} | ` +
          `${cell((r) => (r.rssKb ? r.rssKb / 1024 : undefined), 1)} | ${cell((r) => (r.pssKb ? r.pssKb / 1024 : undefined), 1)} |`,
      );
    }
    const failed = runs
      .filter((r) => r.n === n)
      .reduce((a, r) => a + (r.keepAlive?.failed ?? 0) + (r.close?.failed ?? 0) + (r.json?.failed ?? 0), 0);
    if (failed)
      out.push("", `Failed requests (non-2xx + socket errors) in the throughput runs at N=${n}: ${failed}.`);
  }

  const baseX = extras.find((e) => e.config === ceiling);
  out.push("", `### Manager idle, restart after SIGKILL, rolling reload (N = ${opts.extrasN})`, "");
  out.push(
    `Idle CPU: the manager process alone over ${opts.idle} s from ${opts.idleSettle} s after its workers answered (on-CPU ns from schedstat, the threads alive at the end; clock ticks of 10 ms in brackets). ` +
      `Restart: SIGKILL one worker, ms to the first response from a new pid, median (min–max) of ${opts.kills}. ` +
      `Reload: ${opts.reloads} reload signals, one after the other finished, during one ${opts.reloadDur} s run of load ` +
      `(wrk for keep-alive: failed = non-2xx + socket errors; scripts/bench/close-load.ts for connection-per-request: failed = refused, reset or incomplete).`,
    "",
  );
  out.push(
    "| config | manager idle CPU % of a core | manager RSS MB | manager PSS MB | restart ms median | failed probes during restarts | reload: failed / requests, keep-alive | reload: failed / requests, conn-per-request |",
  );
  out.push("| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const cfg of configs) {
    const e = extras.find((x) => x.config === cfg.name);
    if (!e) continue;
    const ratio = (v: number | undefined, b: number | undefined) =>
      isNum(v) && isNum(b) && b > 0 ? ` (${(v / b).toFixed(2)}×)` : "";
    const restart = e.restartMs.length ? median(e.restartMs) : undefined;
    const baseRestart = baseX?.restartMs.length ? median(baseX.restartMs) : undefined;
    const reloadCell = (r?: LoadResult) => (r ? `${r.failed} / ${fmt(r.requests)}` : "n/a");
    out.push(
      `| ${cfg.name} | ${fmt(e.idleCpuPct, 3)} (${e.idleTicks ?? "–"} ticks)${ratio(e.idleCpuPct, baseX?.idleCpuPct)} | ` +
        `${fmt((e.managerRssKb ?? Number.NaN) / 1024, 1)}${ratio(e.managerRssKb, baseX?.managerRssKb)} | ` +
        `${fmt((e.managerPssKb ?? Number.NaN) / 1024, 1)}${ratio(e.managerPssKb, baseX?.managerPssKb)} | ` +
        `${restartCell(e.restartMs)}${ratio(restart, baseRestart)} | ` +
        `${e.restartFailedProbes} | ${reloadCell(e.reload?.keepAlive)} | ${reloadCell(e.reload?.close)} |`,
    );
  }
  const sup = extras.find((e) => e.config === "supervisor");
  if (sup?.reload?.reloadMs.length)
    out.push(
      "",
      `Supervisor: SIGHUP to \`reload finished\` ${sup.reload.reloadMs.map((x) => Math.round(x)).join(", ")} ms.`,
    );

  out.push("", "### Goals (issue 6)", "");
  out.push(...goals({ opts, runs, extras, skipped }));
  if (skipped.length) out.push("", "Skipped:", ...skipped.map((s) => `- ${s}`));
  return out.join("\n");
}

function goals({ opts, runs, extras }: Results): string[] {
  const pairs = (n: number, get: (r: RunRecord) => number | undefined) => {
    const ratios: number[] = [];
    for (const r of runs.filter((x) => x.config === "supervisor" && x.n === n)) {
      const b = runs.find((x) => x.config === "ceiling" && x.n === n && x.round === r.round);
      const v = get(r);
      const bv = b ? get(b) : undefined;
      if (isNum(v) && isNum(bv) && bv > 0) ratios.push(v / bv);
    }
    return ratios.length ? median(ratios) : undefined;
  };
  const mark = (ok: boolean | undefined) => (ok === undefined ? "not measured" : ok ? "met" : "MISSED");
  const lines: string[] = [];
  for (const n of opts.ns) {
    const ka = pairs(n, (r) => r.keepAlive?.rps);
    const cl = pairs(n, (r) => r.close?.rps);
    lines.push(
      `- N=${n}: supervisor / ceiling req/s, median of pairs: keep-alive ${fmt(ka, 3)}×, conn-per-request ${fmt(cl, 3)}× (goal ≥ 0.97×): ` +
        `${mark(ka === undefined || cl === undefined ? undefined : ka >= 0.97 && cl >= 0.97)}`,
    );
  }
  const n4 = opts.ns.includes(4) ? 4 : opts.ns[opts.ns.length - 1];
  if (n4 !== undefined) {
    const ready = pairs(n4, (r) => r.readyLine ?? r.allPids);
    lines.push(
      `- N=${n4}: launch to all workers ready, supervisor / ceiling, median of pairs ${fmt(ready, 2)}× (goal ≤ 1.5×): ${mark(ready === undefined ? undefined : ready <= 1.5)}`,
    );
  }
  const sup = extras.find((e) => e.config === "supervisor");
  lines.push(
    `- Supervisor parent idle CPU ${fmt(sup?.idleCpuPct, 3)}% of a core over ${opts.idle} s (goal < 0.1%): ${mark(sup?.idleCpuPct === undefined ? undefined : sup.idleCpuPct < 0.1)}; RSS ${fmt((sup?.managerRssKb ?? Number.NaN) / 1024, 1)} MB, PSS ${fmt((sup?.managerPssKb ?? Number.NaN) / 1024, 1)} MB`,
  );
  const restart = sup?.restartMs.length ? median(sup.restartMs) : undefined;
  lines.push(
    `- Supervisor: SIGKILLed worker's replacement answers in ${fmt(restart)} ms median (goal ≤ 150 ms): ${mark(restart === undefined ? undefined : restart <= 150)}`,
  );
  return lines;
}

function restartCell(ms: number[]): string {
  if (!ms.length) return "–";
  const show = (v: number) => (Number.isFinite(v) ? fmt(v) : "never");
  const replaced = ms.filter(Number.isFinite).length;
  const note =
    replaced < ms.length ? `; ${ms.length - replaced} of ${ms.length} not replaced within 5 s` : "";
  return `${show(median(ms))} (${show(Math.min(...ms))}–${show(Math.max(...ms))}${note})`;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function isNum(v: number | undefined): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

export function fmt(v: number | undefined, digits = 0): string {
  if (!isNum(v)) return "–";
  return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
