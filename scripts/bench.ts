// `bun scripts/bench.ts`: the supervisor side by side with the ceiling (N plain Bun.serve reusePort
// processes, scripts/bench/ceiling.ts) and the peers users compare it with (node cluster, PM2 cluster,
// gunicorn + UvicornWorker, uvicorn --workers). A benchmark, not a test: it skips what is not
// installed, says so, and exits 0 whatever the figures are.
//
// Options, as flags (`--dur=5`, `--n 2,4`) or environment variables (DUR=5 N=2,4):
//   N        worker counts, comma-separated (default 2,4)
//   DUR      seconds per wrk run (default 5); WARM seconds of discarded warm-up load (default 1)
//   ROUNDS   rounds of the throughput phase; configurations alternate within and across rounds (default 2)
//   CONFIGS  which configurations, comma-separated (default all: ceiling,supervisor,node-cluster,
//            pm2-cluster,gunicorn-uvicorn,uvicorn-workers)
//   EXTRAS_N worker count of the extras phase: idle CPU, restart and reload (default: largest N)
//   IDLE     seconds the manager is watched idle (default 10); KILLS restarts timed (default 5)
//   RELOADS  SIGHUPs sent during each reload run (default 3); RELOAD_DUR its seconds (default 9)
//   WRK_THREADS, WRK_CONNS  load generator (default 1 thread, 64 connections)
//   PORT_BASE first port (default 18100; each launch takes the next one, up to PORT_BASE+799)
//   SUPERVISOR_BIN  the binary to measure (default: a copy of dist/supervisor, built if missing)
//   OUT      also write the markdown report to this file
// Logs of every launch go to $TMPDIR/supervisor-bench/.

import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const benchDir = join(root, "scripts", "bench");
const CONFIG_NAMES = [
  "ceiling",
  "supervisor",
  "node-cluster",
  "pm2-cluster",
  "gunicorn-uvicorn",
  "uvicorn-workers",
];
const opts = readOptions(process.argv.slice(2));
const workDir = join(tmpdir(), "supervisor-bench");
mkdirSync(workDir, { recursive: true });
const HOST = "127.0.0.1";
const WRK = Bun.which("wrk");

interface Config {
  name: string;
  /** Why it cannot run here, or undefined. */
  missing(): string | undefined;
  command(n: number, port: number): string[];
  env?(n: number, port: number): Record<string, string>;
  /** The manager's own "all workers ready" line, when it prints one. */
  readyLine?: RegExp;
  /** A zero-downtime reload signal, when it has one; and the line that says a reload finished. */
  reload?: { signal: NodeJS.Signals; doneLine?: RegExp };
}

const bun = process.execPath;
/** Debian's python3 first: gunicorn, uvicorn and FastAPI come from its packages (a pyenv shim lacks them). */
const python = ["/usr/bin/python3", Bun.which("python3")].find((p) => p && existsSync(p)) ?? "python3";
let supervisorBin = "";

const CONFIGS: Config[] = [
  {
    name: "ceiling",
    missing: () => undefined,
    command: (n) => [bun, join(benchDir, "ceiling.ts"), String(n)],
    readyLine: /^ready: \d+ processes listening/,
  },
  {
    name: "supervisor",
    missing: () => undefined,
    command: (n, port) => [
      supervisorBin,
      "run",
      join(benchDir, "hello.ts"),
      "-w",
      String(n),
      "-p",
      String(port),
      "-H",
      HOST,
    ],
    readyLine: /\bready: \d+ workers? listening on /,
    reload: { signal: "SIGHUP", doneLine: /\breload finished: / },
  },
  {
    name: "node-cluster",
    missing: () => (Bun.which("node") ? undefined : "node is not installed"),
    command: (n) => ["node", join(benchDir, "node-cluster.cjs"), String(n)],
  },
  {
    name: "pm2-cluster",
    missing: () =>
      Bun.which("pm2-runtime") ? undefined : "pm2-runtime is not installed (npm install -g pm2)",
    command: () => ["pm2-runtime", "start", join(benchDir, "pm2.config.cjs")],
    env: (n) => ({ N: String(n), PM2_HOME: join(workDir, "pm2-home") }),
  },
  {
    name: "gunicorn-uvicorn",
    missing: () => pythonMissing("gunicorn"),
    command: (n, port) => [
      python,
      "-m",
      "gunicorn",
      "fastapi_app:app",
      "--chdir",
      benchDir,
      "-w",
      String(n),
      "-k",
      "uvicorn.workers.UvicornWorker",
      "-b",
      `${HOST}:${port}`,
    ],
    reload: { signal: "SIGHUP" },
  },
  {
    name: "uvicorn-workers",
    missing: () => pythonMissing("uvicorn"),
    command: (n, port) => [
      python,
      "-m",
      "uvicorn",
      "fastapi_app:app",
      "--app-dir",
      benchDir,
      "--workers",
      String(n),
      "--host",
      HOST,
      "--port",
      String(port),
      "--log-level",
      "warning",
    ],
  },
];

interface LoadResult {
  rps: number;
  p99: number;
  requests: number;
  failed: number;
  /** wrk's error lines, when there were any. */
  errors?: string;
}
interface RunRecord {
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
interface ExtraRecord {
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

const runs: RunRecord[] = [];
const extras: ExtraRecord[] = [];
const skipped: string[] = [];
let nextPort = opts.portBase;
const live = new Set<number>(); // process groups to kill if we are interrupted

await main();

async function main(): Promise<void> {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      for (const pgid of live) killGroup(pgid, "SIGKILL");
      process.exit(130);
    });
  }
  supervisorBin = prepareSupervisor();
  const configs = CONFIGS.filter((c) => opts.configs.includes(c.name)).filter((c) => {
    const why = c.missing();
    if (why) skipped.push(`${c.name}: ${why}`);
    return !why;
  });
  if (!WRK) skipped.push("req/s and latency: wrk is not installed (apt-get install wrk)");
  log(
    `bench: ${configs.map((c) => c.name).join(", ")}; N=${opts.ns.join(",")} DUR=${opts.dur}s ROUNDS=${opts.rounds} (logs in ${workDir})`,
  );
  for (const s of skipped) log(`skipped ${s}`);

  // Throughput and launch: every configuration once per round, for each N; the order is reversed
  // every other round (ABBA), so a drift of the machine over the run favours none of them.
  for (const n of opts.ns) {
    for (let round = 1; round <= opts.rounds; round++) {
      const order = round % 2 === 1 ? configs : [...configs].reverse();
      for (const cfg of order) runs.push(await throughputRun(cfg, n, round));
    }
  }
  // Idle CPU, restart after SIGKILL, failed requests during reloads: once per configuration.
  for (const cfg of configs) extras.push(await extrasRun(cfg, opts.extrasN));

  const report = renderReport(configs);
  console.log(`\n${report}`);
  if (opts.out) writeFileSync(opts.out, report);
  writeFileSync(join(workDir, "results.json"), JSON.stringify({ opts, runs, extras, skipped }, null, 2));
}

// --- phases ---

async function throughputRun(cfg: Config, n: number, round: number): Promise<RunRecord> {
  const rec: RunRecord = { config: cfg.name, n, round };
  const app = await launch(cfg, n, `${cfg.name}-n${n}-r${round}`);
  try {
    Object.assign(rec, app.launch);
    if (rec.allPids === undefined) {
      log(`  ${cfg.name} N=${n}: not all ${n} workers answered; see ${app.logFile}`);
      return rec;
    }
    if (WRK) {
      const base = `http://${HOST}:${app.port}`;
      if (opts.warm > 0) await wrk(`${base}/`, opts.warm, false);
      rec.keepAlive = await wrk(`${base}/`, opts.dur, false);
      rec.close = await wrk(`${base}/`, opts.dur, true);
      rec.json = await wrk(`${base}/json`, opts.dur, false);
    }
    const mem = treeMemory(app.pid);
    rec.rssKb = mem.rss;
    rec.pssKb = mem.pss;
    log(
      `  ${cfg.name} N=${n} round ${round}: first 200 ${fmt(rec.first200)} ms, ready ${fmt(rec.readyLine ?? rec.allPids)} ms, ` +
        `${fmt(rec.keepAlive?.rps)} req/s keep-alive, ${fmt(rec.close?.rps)} close, ${fmt(rec.json?.rps)} json, PSS ${fmt(mem.pss / 1024, 1)} MB`,
    );
  } finally {
    await app.stop();
  }
  return rec;
}

async function extrasRun(cfg: Config, n: number): Promise<ExtraRecord> {
  const rec: ExtraRecord = { config: cfg.name, n, restartMs: [], restartFailedProbes: 0 };
  const app = await launch(cfg, n, `${cfg.name}-n${n}-extras`);
  try {
    if (app.launch.allPids === undefined) return rec;
    // Idle: let start-up settle, then the manager's own CPU time over IDLE seconds.
    await Bun.sleep(1000);
    const before = cpuOf(app.pid);
    await Bun.sleep(opts.idle * 1000);
    const after = cpuOf(app.pid);
    rec.idleTicks = after.ticks - before.ticks;
    rec.idleCpuPct = ((after.ns - before.ns) / (opts.idle * 1e9)) * 100;
    const own = processMemory(app.pid);
    rec.managerRssKb = own.rss;
    rec.managerPssKb = own.pss;

    // Restart: SIGKILL one worker, time to the first response from a pid not seen before.
    let known = await collectPids(app.port, n);
    for (let k = 0; k < opts.kills && known.size >= n; k++) {
      // Wait past every manager's "died soon after start" window (1 s) so no backoff is measured.
      await Bun.sleep(1500);
      known = await collectPids(app.port, n);
      const victim = [...known][k % known.size] as number;
      const t0 = performance.now();
      process.kill(victim, "SIGKILL");
      let fresh: number | undefined;
      while (performance.now() - t0 < 5000) {
        const pid = await askPid(app.port, 1000);
        if (pid === undefined) rec.restartFailedProbes++;
        else if (!known.has(pid)) {
          fresh = pid;
          break;
        }
      }
      const ms = performance.now() - t0;
      rec.restartMs.push(fresh === undefined ? Number.POSITIVE_INFINITY : ms);
      known.delete(victim);
      if (fresh !== undefined) known.add(fresh);
    }
    log(
      `  ${cfg.name} N=${n}: manager idle CPU ${fmt(rec.idleCpuPct, 3)}% (${rec.idleTicks} ticks), RSS ${fmt(own.rss / 1024, 1)} MB; ` +
        `restart ${rec.restartMs.map((x) => (Number.isFinite(x) ? Math.round(x) : "never")).join(", ")} ms`,
    );

    // Reload under load: wrk runs while RELOADS signals come, one after the other reload finished.
    if (cfg.reload && WRK) {
      rec.reload = { reloadMs: [] };
      for (const close of [false, true]) {
        await Bun.sleep(1500);
        const load = close
          ? closeLoad(app.port, opts.reloadDur)
          : wrk(`http://${HOST}:${app.port}/`, opts.reloadDur, false);
        const gap = ((opts.reloadDur - 1.5) * 1000) / opts.reloads;
        await Bun.sleep(500);
        for (let r = 0; r < opts.reloads; r++) {
          const t0 = performance.now();
          const seen = app.lines.length;
          process.kill(app.pid, cfg.reload.signal);
          if (cfg.reload.doneLine) {
            const line = await app.waitLine(cfg.reload.doneLine, gap, seen);
            if (line) rec.reload.reloadMs.push(line.at - t0);
          }
          await Bun.sleep(Math.max(0, gap - (performance.now() - t0)));
        }
        const result = await load;
        if (close) rec.reload.close = result;
        else rec.reload.keepAlive = result;
      }
      if (rec.reload.keepAlive?.failed) log(`    wrk: ${rec.reload.keepAlive.errors}`);
      log(
        `  ${cfg.name} N=${n}: reload failed requests ${rec.reload.keepAlive?.failed} keep-alive, ${rec.reload.close?.failed} close`,
      );
    }
  } finally {
    await app.stop();
  }
  return rec;
}

// --- launching and stopping ---

interface Line {
  at: number;
  text: string;
}
interface Launched {
  pid: number;
  port: number;
  logFile: string;
  lines: Line[];
  launch: { first200?: number; readyLine?: number; allPids?: number };
  waitLine(re: RegExp, timeoutMs: number, from?: number): Promise<Line | undefined>;
  stop(): Promise<void>;
}

async function launch(cfg: Config, n: number, tag: string): Promise<Launched> {
  const port = nextPort++;
  if (nextPort > opts.portBase + 799) nextPort = opts.portBase;
  const logFile = join(workDir, `${tag}.log`);
  const lines: Line[] = [];
  const t0 = performance.now();
  const proc = Bun.spawn(cfg.command(n, port), {
    cwd: benchDir,
    env: { ...process.env, PORT: String(port), HOST, NODE_ENV: "production", ...cfg.env?.(n, port) },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group: stop() can reach every descendant
  });
  live.add(proc.pid);
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    let rest = "";
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      const at = performance.now() - t0;
      const parts = (rest + decoder.decode(chunk, { stream: true })).split("\n");
      rest = parts.pop() ?? "";
      for (const text of parts) lines.push({ at, text });
    }
    if (rest) lines.push({ at: performance.now() - t0, text: rest });
  };
  const drained = Promise.all([collect(proc.stdout), collect(proc.stderr)]);

  const waitLine = async (re: RegExp, timeoutMs: number, from = 0) => {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const hit = lines.slice(from).find((l) => re.test(l.text));
      if (hit) return { at: hit.at + t0, text: hit.text };
      await Bun.sleep(2);
    }
    return undefined;
  };

  // Launch to the first 200, and to responses from N distinct pids (every worker serves).
  const launchInfo: Launched["launch"] = {};
  const pids = new Set<number>();
  while (performance.now() - t0 < 20_000 && proc.exitCode === null) {
    const pid = await askPid(port, 1000);
    if (pid === undefined) {
      await Bun.sleep(2);
      continue;
    }
    launchInfo.first200 ??= performance.now() - t0;
    pids.add(pid);
    if (pids.size >= n) {
      launchInfo.allPids = performance.now() - t0;
      break;
    }
  }
  if (cfg.readyLine) {
    const line = await waitLine(cfg.readyLine, 5000);
    if (line) launchInfo.readyLine = line.at - t0;
  }

  const stop = async () => {
    if (proc.exitCode === null) process.kill(proc.pid, "SIGTERM");
    const deadline = performance.now() + 8000;
    while (performance.now() < deadline && groupMembers(proc.pid).length > 0) await Bun.sleep(20);
    killGroup(proc.pid, "SIGKILL");
    await proc.exited;
    await Promise.race([drained, Bun.sleep(1000)]);
    live.delete(proc.pid);
    writeFileSync(logFile, `${lines.map((l) => `${l.at.toFixed(1).padStart(9)} ${l.text}`).join("\n")}\n`);
  };
  return { pid: proc.pid, port, logFile, lines, launch: launchInfo, waitLine, stop };
}

/** Every live process of the group the launch created, plus its descendants that left the group. */
function groupMembers(leader: number): number[] {
  const table = procTable();
  const found = new Set<number>();
  for (const [pid, p] of table) if (p.pgrp === leader && p.state !== "Z") found.add(pid);
  for (const pid of descendants(leader, table)) if (table.get(pid)?.state !== "Z") found.add(pid);
  return [...found];
}

function killGroup(leader: number, signal: NodeJS.Signals): void {
  for (const pid of [-leader, ...groupMembers(leader)]) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

// --- measuring ---

/** One request on a fresh connection to /pid; the worker's pid, or undefined on any failure. */
async function askPid(port: number, timeoutMs: number): Promise<number | undefined> {
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
async function collectPids(port: number, n: number): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < 400 && pids.size < n; i++) {
    const pid = await askPid(port, 1000);
    if (pid !== undefined) pids.add(pid);
  }
  return pids;
}

async function wrk(url: string, seconds: number, close: boolean): Promise<LoadResult> {
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
  return parseWrk(out + err, close);
}

/** wrk's summary. With `Connection: close`, Bun closes without a `Connection: close` response header,
 * so wrk logs one "read" socket error per request: read errors are not counted as failures then
 * (close-load.ts counts those runs exactly). */
/** Connection-per-request load with exact failure counts (scripts/bench/close-load.ts). */
async function closeLoad(port: number, seconds: number): Promise<LoadResult> {
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

function parseWrk(text: string, close: boolean): LoadResult {
  const num = (re: RegExp) => Number(text.match(re)?.[1] ?? Number.NaN);
  const p99 = text.match(/^\s*99%\s+([\d.]+)(us|ms|s)\b/m);
  const scale = { us: 1e-3, ms: 1, s: 1e3 } as Record<string, number>;
  const sock = text.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  const socketErrors = sock
    ? sock.slice(1).reduce((a, b, i) => a + (close && i === 1 ? 0 : Number(b)), 0)
    : 0;
  const non2xx = Number(text.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p99: p99 ? Number(p99[1]) * (scale[p99[2] as string] ?? 1) : Number.NaN,
    requests: num(/(\d+) requests in/),
    failed: socketErrors + non2xx,
    errors: text
      .match(/^\s*(Socket errors|Non-2xx).*$/gm)
      ?.join("; ")
      .replace(/\s+/g, " "),
  };
}

interface ProcInfo {
  ppid: number;
  pgrp: number;
  state: string;
}

function procTable(): Map<number, ProcInfo> {
  const table = new Map<number, ProcInfo>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const f = statFields(Number(name));
      table.set(Number(name), { state: f[0] as string, ppid: Number(f[1]), pgrp: Number(f[2]) });
    } catch {
      // exited while we looked
    }
  }
  return table;
}

function descendants(root: number, table = procTable()): number[] {
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    const parent = queue.shift() as number;
    for (const [pid, p] of table) {
      if (p.ppid === parent) {
        out.push(pid);
        queue.push(pid);
      }
    }
  }
  return out;
}

/** /proc/PID/stat after the command name: [state, ppid, pgrp, ...]; utime and stime at 11 and 12. */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** CPU time of one process: clock ticks (utime+stime, 10 ms each) and ns on CPU (schedstat, all threads). */
function cpuOf(pid: number): { ticks: number; ns: number } {
  const f = statFields(pid);
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // thread ended
    }
  }
  return { ticks: Number(f[11]) + Number(f[12]), ns };
}

function processMemory(pid: number): { rss: number; pss: number } {
  const kb = (text: string, key: string) =>
    Number(text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"))?.[1] ?? 0);
  try {
    return {
      rss: kb(readFileSync(`/proc/${pid}/status`, "utf8"), "VmRSS"),
      pss: kb(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"), "Pss"),
    };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

/** RSS and PSS (kB) of the manager and all its descendants. */
function treeMemory(pid: number): { rss: number; pss: number } {
  let rss = 0;
  let pss = 0;
  for (const p of [pid, ...descendants(pid)]) {
    const m = processMemory(p);
    rss += m.rss;
    pss += m.pss;
  }
  return { rss, pss };
}

// --- report ---

function renderReport(configs: Config[]): string {
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
    `Idle CPU: the manager process alone over ${opts.idle} s (on-CPU ns from schedstat; clock ticks of 10 ms in brackets). ` +
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
  out.push(...goals());
  if (skipped.length) out.push("", "Skipped:", ...skipped.map((s) => `- ${s}`));
  return out.join("\n");
}

function goals(): string[] {
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

// --- helpers ---

function prepareSupervisor(): string {
  if (opts.supervisorBin) return resolve(opts.supervisorBin);
  const dist = join(root, "dist", "supervisor");
  if (!existsSync(dist)) {
    log("dist/supervisor is missing: building it (bun scripts/build.ts)");
    Bun.spawnSync([bun, join(root, "scripts", "build.ts")], {
      cwd: root,
      stdio: ["ignore", "inherit", "inherit"],
    });
  }
  // A private copy: a rebuild of dist/ during the run (tests build it) must not change what is measured.
  const copy = join(workDir, "supervisor");
  copyFileSync(dist, copy);
  return copy;
}

function readOptions(argv: string[]) {
  const flags: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--help" || arg === "-h") {
      const header = readFileSync(import.meta.path, "utf8").split("\n\n")[0] ?? "";
      console.log(header.replace(/^\/\/ ?/gm, ""));
      process.exit(0);
    }
    const m = arg.match(/^--([\w-]+)(?:=(.*))?$/);
    if (!m) throw new Error(`unknown argument ${arg} (see --help)`);
    const key = (m[1] as string).toUpperCase().replace(/-/g, "_");
    flags[key] = m[2] ?? (argv[++i] as string);
  }
  const get = (key: string, fallback: string) => flags[key] ?? process.env[key] ?? fallback;
  const num = (key: string, fallback: number) => {
    const v = Number(get(key, String(fallback)));
    if (!Number.isFinite(v) || v < 0) throw new Error(`${key} must be a number, got '${get(key, "")}'`);
    return v;
  };
  const ns = get("N", "2,4")
    .split(",")
    .map((x) => Number(x.trim()))
    .filter((x) => Number.isInteger(x) && x > 0);
  return {
    ns,
    dur: num("DUR", 5),
    warm: num("WARM", 1),
    rounds: Math.max(1, num("ROUNDS", 2)),
    configs: get("CONFIGS", CONFIG_NAMES.join(","))
      .split(",")
      .map((x) => x.trim()),
    extrasN: num("EXTRAS_N", Math.max(...ns)),
    idle: num("IDLE", 10),
    kills: num("KILLS", 5),
    reloads: Math.max(1, num("RELOADS", 3)),
    reloadDur: num("RELOAD_DUR", 9),
    wrkThreads: num("WRK_THREADS", 1),
    wrkConns: num("WRK_CONNS", 64),
    portBase: num("PORT_BASE", 18100),
    supervisorBin: get("SUPERVISOR_BIN", ""),
    out: get("OUT", ""),
  };
}

function pythonMissing(module: string): string | undefined {
  const probe = Bun.spawnSync([python, "-c", `import ${module}, uvicorn, fastapi`], { stderr: "pipe" });
  return probe.exitCode === 0
    ? undefined
    : `python3 cannot import ${module}, uvicorn and fastapi (apt-get install gunicorn python3-uvicorn python3-fastapi python3-uvloop python3-httptools)`;
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

function fmt(v: number | undefined, digits = 0): string {
  if (!isNum(v)) return "–";
  return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function log(message: string): void {
  console.error(message);
}
