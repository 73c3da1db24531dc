// `bun scripts/bench/memory.ts`: where the memory and the idle CPU of `supervisor run hello.ts -w N` go,
// against plain Bun in the same run (issue 16). A benchmark, not a test: it prints what it measured
// and exits 0 whatever the figures are.
//
//   tree    after light load: PSS of the whole process tree, each worker's RSS and the parent's PSS,
//           broken down by mapping (the binary's text, its read-only data, its data segment with the
//           embedded program, anonymous memory), for the supervisor, the supervisor with --admin, the
//           plain-Bun ceiling (launcher.ts: N `bun` processes with reusePort and a launcher without
//           IPC), bench.ts's IPC ceiling (ceiling.ts) and node cluster when node is installed.
//   costs   one process at a time, what each thing a worker or the parent does costs in RSS: the
//           compiled binary run as bun, an IPC channel, the worker's channel and beat file, the
//           worker's source in the environment, node:http, bun:ffi, consola, citty, a unix-socket server.
//   idle    each manager's parent, idle, all side by side: CPU (schedstat, all threads) and wake-ups
//           (context switches) over the same IDLE seconds, as a ratio to the launcher in the same round;
//           node cluster and gunicorn + uvicorn (Debian's packages) too, when installed.
//   launch  spawn to all N workers answering, as a ratio to the launcher in the same round; with the
//           launcher starting other workers ("launcher: …" rows) to split the gap between the
//           workers' start and the parent's.
//   settled (only when asked: PARTS=settled) the trees side by side, after light load and again
//           SETTLE_TREE seconds (60) after their start: Bun's collector and mimalloc go on returning
//           memory for the first 30-60 s, in every Bun process.
// Rounds alternate the order of the configurations (ABBA) so a drift of a shared machine favours none.
//
// Options, as flags (`--idle=10`) or environment variables: N (default 4), ROUNDS (2), IDLE seconds
// (30) after SETTLE seconds (30), LAUNCHES (6), PARTS (tree,costs,idle,launch; settled on request),
// SETTLE_TREE seconds (60), SUPERVISOR_BIN (default: a copy of
// dist/supervisor), BEFORE (another supervisor binary, measured alongside as "supervisor (before)"),
// CONFIGS (a comma-separated subset of the managers), PORT_BASE (18900), OUT (also write the report to this file).
// The binaries are private copies: the text pages of a bun that other processes on the machine run
// would be shared with them and lower the PSS measured here. Before each tree and costs sample their
// page cache is dropped (`dd iflag=nocache`), so every configuration starts from the binary read
// from disk: how a freshly written file sits in the page cache changes the RSS of every process
// that maps it (two identical copies of one binary, one just written: 44.2 against 41.4 MB a worker).

import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { workerLaunch } from "../../src/runtime/host.ts";
import { workerJavaScript } from "../../src/worker/source.ts";
import { workerConfig } from "../../test/worker-harness.ts";
import { since, type ThreadStats, threadStats } from "./measure.ts";
import { peerConfigs } from "./peers.ts";

const root = resolve(import.meta.dir, "../..");
const benchDir = import.meta.dir;
const workDir = join(tmpdir(), "supervisor-memory");
mkdirSync(workDir, { recursive: true });
const HOST = "127.0.0.1";
const opts = readOptions(process.argv.slice(2));
const hello = join(benchDir, "hello.ts");
const plainWorker = join(benchDir, "ceiling-worker.ts");
/** The worker's bundled source (src/worker/), as the supervisor puts it in each worker's environment. */
const workerJs = workerJavaScript();
let port = opts.portBase;

const bun = privateCopy(process.execPath, "bun");
const sup = privateCopy(opts.supervisorBin || buildSupervisor(), "supervisor");
const before = opts.before ? privateCopy(opts.before, "supervisor-before") : undefined;
const binaries = [bun, sup, ...(before ? [before] : [])];
dropPageCache(binaries);
const embedded = elfSection(sup, ".bun");

interface Launch {
  cmd: (n: number, port: number) => string[];
  env?: (port: number) => Record<string, string>;
}
const launcher = (n: number) => [bun, join(benchDir, "launcher.ts"), String(n)];
const launcherWorker = (worker: {
  cmd: string[];
  env: Record<string, string | undefined>;
  channel?: boolean;
}) => ({
  LAUNCHER_WORKER: JSON.stringify(worker),
});
const bareWorker = `const app=(await import(${JSON.stringify(hello)})).default;Bun.serve({...app,port:Number(process.env.PORT),hostname:process.env.HOST,reusePort:true})`;
/** The command and environment src/runtime/host.ts starts a worker with, here for port `p`. */
const supervisorWorker = (p: number) => ({
  ...workerLaunch({ ...workerConfig(hello, p), host: HOST }, {}, { executable: sup, js: workerJs }),
  channel: true,
});
const gunicorn = peerConfigs(sup).find((c) => c.name === "gunicorn-uvicorn");
const MANAGERS: Record<string, Launch> = {
  supervisor: { cmd: (n, p) => [sup, "run", hello, "-w", String(n), "-p", String(p), "-H", HOST] },
  "supervisor --admin": {
    cmd: (n, p) => [
      sup,
      "run",
      hello,
      "-w",
      String(n),
      "-p",
      String(p),
      "-H",
      HOST,
      "--admin",
      `${HOST}:${p + 1}`,
    ],
  },
  "supervisor (before)": {
    cmd: (n, p) => [before ?? "", "run", hello, "-w", String(n), "-p", String(p), "-H", HOST],
  },
  launcher: { cmd: launcher },
  // The launch part's split of the gap (what a worker's start costs without our parent): the launcher
  // starting the ceiling's worker under our binary as bun; a bare `-e` worker under it (the app
  // imported from `-e`, as the supervisor's stub does); and the supervisor's own worker command (the
  // `-e` stub, the bootstrap and its config in the environment, the channel on fd 3). What is left
  // up to "supervisor" is the parent's.
  "launcher: ceiling workers, binary": {
    cmd: launcher,
    env: () => launcherWorker({ cmd: [sup, plainWorker], env: { BUN_BE_BUN: "1" } }),
  },
  "launcher: bare -e workers, binary": {
    cmd: launcher,
    env: () => launcherWorker({ cmd: [sup, "-e", bareWorker], env: { BUN_BE_BUN: "1" } }),
  },
  "launcher: supervisor's workers": { cmd: launcher, env: (p) => launcherWorker(supervisorWorker(p)) },
  "ceiling (IPC)": { cmd: (n) => [bun, join(benchDir, "ceiling.ts"), String(n)] },
  "node cluster": { cmd: (n) => ["node", join(benchDir, "node-cluster.cjs"), String(n)] },
  // The seed's stack, as bench.ts runs it: FastAPI under gunicorn + UvicornWorker.
  "gunicorn + uvicorn": { cmd: (n, p) => gunicorn?.command(n, p) ?? [] },
};
const hasNode = Bun.which("node") !== null;
const gunicornMissing = gunicorn ? gunicorn.missing() : "not among bench.ts's peers";
const hasGunicorn = gunicornMissing === undefined;
const managers = (names: string[]) =>
  names.filter(
    (m) =>
      (m !== "node cluster" || hasNode) &&
      (m !== "gunicorn + uvicorn" || hasGunicorn) &&
      (m !== "supervisor (before)" || before) &&
      (!opts.configs.length || opts.configs.includes(m)),
  );
const out: string[] = [];
const report = (...lines: string[]) => {
  for (const line of lines.length ? lines : [""]) {
    out.push(line);
    console.log(line);
  }
};

const live = new Set<number>();
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.on(signal, () => {
    for (const pid of live) killTree(pid, "SIGKILL");
    process.exit(130);
  });

// --- parts ---

async function main(): Promise<void> {
  report(`# Memory and idle cost (N=${opts.n}, ${opts.rounds} rounds, ${new Date().toISOString()})`);
  report(
    `supervisor ${sup} (embedded program: ${kb(embedded?.size ?? 0)} KB .bun section), bun ${Bun.version}`,
  );
  if (!hasNode) report("node is not installed: node cluster skipped");
  if (!hasGunicorn && opts.parts.includes("idle")) report(`${gunicornMissing}: gunicorn + uvicorn skipped`);
  if (opts.parts.includes("tree")) await treePart();
  if (opts.parts.includes("costs")) await costsPart();
  if (opts.parts.includes("idle")) await idlePart();
  if (opts.parts.includes("launch")) await launchPart();
  if (opts.parts.includes("settled")) await settledPart();
  if (opts.out) writeFileSync(opts.out, `${out.join("\n")}\n`);
}

async function treePart(): Promise<void> {
  const names = managers([
    "supervisor",
    "supervisor (before)",
    "supervisor --admin",
    "launcher",
    "ceiling (IPC)",
    "node cluster",
  ]);
  const rows: Record<string, TreeSample[]> = {};
  for (let round = 1; round <= opts.rounds; round++) {
    for (const name of round % 2 ? names : [...names].reverse()) {
      dropPageCache(binaries);
      const app = await launch(MANAGERS[name] as Launch, opts.n);
      try {
        await lightLoad(app.port);
        await Bun.sleep(1000);
        push(rows, name, treeSample(app.pid));
      } finally {
        await app.stop();
      }
    }
  }
  const base = rows.launcher ?? [];
  const plainRss = median(base.map((s) => median(s.workers.map((w) => w.rss))));
  report(
    "",
    `## Whole tree after light load (N=${opts.n}; medians over rounds; ratio: to the launcher in the same round)`,
    "",
  );
  report(
    "| config | tree PSS MB | × launcher | parent PSS MB | parent RSS MB | worker RSS MB | worker RSS − plain bun MB |",
  );
  report("| --- | --- | --- | --- | --- | --- | --- |");
  for (const name of names) {
    const s = rows[name] ?? [];
    const ratio = median(s.map((x, i) => x.treePss / (base[i]?.treePss ?? Number.NaN)));
    const wRss = median(s.map((x) => median(x.workers.map((w) => w.rss))));
    report(
      `| ${name} | ${mb(median(s.map((x) => x.treePss)))} | ${ratio.toFixed(2)}× | ${mb(median(s.map((x) => x.parent.pss)))} | ` +
        `${mb(median(s.map((x) => x.parent.rss)))} | ${mb(wRss)} | ${mb(wRss - plainRss)} |`,
    );
  }
  report("", "## By mapping, last round (RSS / PSS in MB; exe = the process's own binary)", "");
  report(
    "| process | exe text r-x | exe rodata r-- | exe data rw- (embedded program resident) | anonymous (heap) | libraries, other | total |",
  );
  report("| --- | --- | --- | --- | --- | --- | --- |");
  for (const name of names) {
    const last = rows[name]?.at(-1);
    if (!last) continue;
    for (const [what, p] of [
      ["parent", last.parent],
      ["one worker", last.workers[0]],
    ] as const) {
      if (!p) continue;
      const c = (k: Category) => `${mb(p.map[k].rss)} / ${mb(p.map[k].pss)}`;
      const emb = p.embeddedKb === undefined ? "" : ` (${mb(p.embeddedKb)})`;
      report(
        `| ${name}: ${what} | ${c("text")} | ${c("rodata")} | ${c("data")}${emb} | ${c("anon")} | ${c("other")} | ${mb(p.rss)} / ${mb(p.pss)} |`,
      );
    }
  }
}

async function costsPart(): Promise<void> {
  const BE_BUN = { BUN_BE_BUN: "1" };
  const idleScript = "setInterval(() => {}, 1e9)";
  const variants: {
    name: string;
    cmd: string[];
    env?: Record<string, string>;
    ipc?: boolean;
    /** Spawned with the worker's channel on fd 3 (a socket pair). */
    channel?: boolean;
    parent?: boolean;
  }[] = [
    { name: "plain bun app", cmd: [bun, plainWorker] },
    { name: "binary as bun, app", cmd: [sup, plainWorker], env: BE_BUN },
    { name: "binary as bun, app + IPC channel", cmd: [sup, plainWorker], env: BE_BUN, ipc: true },
    {
      name: `binary as bun, app + worker source in env (${kb(workerJs.length)} KB)`,
      cmd: [sup, plainWorker],
      env: { ...BE_BUN, SUPERVISOR_WORKER_JS: workerJs },
    },
    {
      name: "binary as bun, app + node:http loaded",
      cmd: [sup, "--preload", join(benchDir, "memory/node-http.ts"), plainWorker],
      env: BE_BUN,
    },
    {
      name: "binary as bun, app + the worker's channel (fd 3) and beat file",
      cmd: [sup, "--preload", join(benchDir, "memory/channel.ts"), plainWorker],
      env: { ...BE_BUN, BEAT_FILE: join(workDir, "beat") },
      channel: true,
    },
    {
      name: "binary as bun, app + bun:ffi prctl (before the channel)",
      cmd: [sup, "--preload", join(benchDir, "memory/ffi.ts"), plainWorker],
      env: BE_BUN,
    },
    { name: "binary as bun, idle script", cmd: [sup, "-e", idleScript], env: BE_BUN, parent: true },
    {
      name: "binary as bun, idle + consola",
      cmd: [sup, "-e", `await import("consola"); ${idleScript}`],
      env: BE_BUN,
      parent: true,
    },
    {
      name: "binary as bun, idle + consola/core",
      cmd: [sup, "-e", `await import("consola/core"); ${idleScript}`],
      env: BE_BUN,
      parent: true,
    },
    {
      name: "binary as bun, idle + citty",
      cmd: [sup, "-e", `await import("citty"); ${idleScript}`],
      env: BE_BUN,
      parent: true,
    },
    {
      name: "binary as bun, idle + unix socket server",
      cmd: [sup, "-e", `Bun.listen({ unix: "${workDir}/ctl.sock", socket: { data() {} } }); ${idleScript}`],
      env: BE_BUN,
      parent: true,
    },
  ];
  const rows: Record<string, ProcSample[]> = {};
  writeFileSync(join(workDir, "beat"), new Uint8Array(16));
  for (let round = 1; round <= opts.rounds; round++) {
    for (const v of round % 2 ? variants : [...variants].reverse()) {
      const p = port++;
      rmSync(join(workDir, "ctl.sock"), { force: true });
      dropPageCache(binaries);
      const proc = Bun.spawn(v.cmd, {
        cwd: root,
        env: { ...process.env, PORT: String(p), HOST, NODE_ENV: "production", ...v.env },
        stdio: ["ignore", "ignore", "inherit", ...(v.channel ? (["pipe"] as const) : [])],
        ...(v.ipc ? { ipc() {}, serialization: "json" as const } : {}),
      });
      live.add(proc.pid);
      try {
        if (v.parent) await Bun.sleep(1500);
        else {
          await waitPids(p, 1, 10_000);
          await lightLoad(p);
          await Bun.sleep(1000);
        }
        push(rows, v.name, procSample(proc.pid));
      } finally {
        proc.kill("SIGKILL");
        await proc.exited;
        live.delete(proc.pid);
      }
    }
  }
  const baseApp = median((rows["binary as bun, app"] ?? []).map((s) => s.rss));
  const baseIdle = median((rows["binary as bun, idle script"] ?? []).map((s) => s.rss));
  report(
    "",
    "## What each part costs, one process at a time (RSS MB, median over rounds; Δ to the line it adds to; a part given as --preload carries the preload's own ~0.9 MB)",
    "",
  );
  report("| variant | RSS MB | Δ MB | exe text | anonymous |");
  report("| --- | --- | --- | --- | --- |");
  for (const v of variants) {
    const s = rows[v.name];
    if (!s) continue;
    const rss = median(s.map((x) => x.rss));
    const base = v.parent ? baseIdle : baseApp;
    const delta =
      v.name === "plain bun app" || v.name.endsWith(", app") || v.name.endsWith("idle script")
        ? ""
        : mb(rss - base);
    report(
      `| ${v.name} | ${mb(rss)} | ${delta} | ${mb(median(s.map((x) => x.map.text.rss)))} | ${mb(median(s.map((x) => x.map.anon.rss)))} |`,
    );
  }
}

async function idlePart(): Promise<void> {
  const names = managers([
    "supervisor",
    "supervisor (before)",
    "launcher",
    "ceiling (IPC)",
    "node cluster",
    "gunicorn + uvicorn",
  ]);
  const rows: Record<string, { cpu: number; wakes: number }[]> = {};
  // All managers idle side by side, watched over the same window: idle processes hardly disturb each
  // other, and a drift of the machine hits all of them alike. First SETTLE seconds: Bun's GC timer runs
  // every second while the heap still grows after start-up, and stops once it no longer does.
  for (let round = 1; round <= opts.rounds; round++) {
    const apps: { name: string; app: Awaited<ReturnType<typeof launch>> }[] = [];
    try {
      for (const name of round % 2 ? names : [...names].reverse())
        apps.push({ name, app: await launch(MANAGERS[name] as Launch, opts.n) });
      await Bun.sleep(opts.settle * 1000);
      const before = apps.map((a) => threadStats(a.app.pid));
      await Bun.sleep(opts.idle * 1000);
      apps.forEach(({ name, app }, i) => {
        const d = since(before[i] as ThreadStats, threadStats(app.pid));
        push(rows, name, { cpu: (d.ns / (opts.idle * 1e9)) * 100, wakes: d.switches / opts.idle });
      });
    } finally {
      for (const { app } of apps) await app.stop();
    }
  }
  const base = rows.launcher ?? [];
  report(
    "",
    `## Idle parent over ${opts.idle} s, ${opts.settle} s after start, all side by side (N=${opts.n}; medians over rounds; ratio: to the launcher in the same round)`,
    "",
  );
  report("| config | CPU % of a core | × launcher | wake-ups/s (all threads) | × launcher |");
  report("| --- | --- | --- | --- | --- |");
  for (const name of names) {
    const s = rows[name] ?? [];
    const r = (k: "cpu" | "wakes") => median(s.map((x, i) => x[k] / (base[i]?.[k] ?? Number.NaN))).toFixed(2);
    report(
      `| ${name} | ${median(s.map((x) => x.cpu)).toFixed(4)} | ${r("cpu")}× | ${median(s.map((x) => x.wakes)).toFixed(2)} | ${r("wakes")}× |`,
    );
  }
}

async function launchPart(): Promise<void> {
  const names = managers([
    "supervisor",
    "supervisor (before)",
    "launcher",
    "ceiling (IPC)",
    "launcher: ceiling workers, binary",
    "launcher: bare -e workers, binary",
    "launcher: supervisor's workers",
  ]);
  const rows: Record<string, number[]> = {};
  for (let round = 1; round <= opts.launches; round++) {
    for (const name of round % 2 ? names : [...names].reverse()) {
      const app = await launch(MANAGERS[name] as Launch, opts.n);
      push(rows, name, app.ms);
      await app.stop();
    }
  }
  const base = rows.launcher ?? [];
  report(
    "",
    `## Launch to all ${opts.n} workers answering /pid (${opts.launches} rounds; medians; ratio: to the launcher in the same round)`,
    "",
  );
  report("| config | ms | × launcher |");
  report("| --- | --- | --- |");
  for (const name of names) {
    const s = rows[name] ?? [];
    report(
      `| ${name} | ${median(s).toFixed(0)} | ${median(s.map((x, i) => x / (base[i] ?? Number.NaN))).toFixed(2)}× |`,
    );
  }
  if (names.includes("launcher: supervisor's workers"))
    report(
      "",
      'The "launcher: …" rows are the plain launcher starting other workers: up to "supervisor\'s workers" the gap is the workers\' start, the rest up to "supervisor" the parent\'s.',
    );
}

async function settledPart(): Promise<void> {
  // Side by side, so one round waits SETTLE_TREE seconds once. Each of these runs its own binary (the
  // launcher alone runs the bun copy here), so no tree shares pages with another.
  const names = managers(["supervisor", "supervisor (before)", "launcher", "node cluster"]);
  const rows: Record<string, { early: TreeSample; late: TreeSample }[]> = {};
  for (let round = 1; round <= opts.rounds; round++) {
    dropPageCache(binaries);
    const apps: { name: string; app: Awaited<ReturnType<typeof launch>>; at: number }[] = [];
    try {
      for (const name of round % 2 ? names : [...names].reverse())
        apps.push({ name, app: await launch(MANAGERS[name] as Launch, opts.n), at: performance.now() });
      const early = new Map<string, TreeSample>();
      for (const { name, app } of apps) {
        await lightLoad(app.port);
        await Bun.sleep(1000);
        early.set(name, treeSample(app.pid));
      }
      for (const { name, app, at } of apps) {
        await Bun.sleep(Math.max(0, at + opts.settleTree * 1000 - performance.now()));
        push(rows, name, { early: early.get(name) as TreeSample, late: treeSample(app.pid) });
      }
    } finally {
      for (const { app } of apps) await app.stop();
    }
  }
  const base = rows.launcher ?? [];
  report(
    "",
    `## Whole tree after light load and ${opts.settleTree} s after start, side by side (N=${opts.n}; medians over rounds; ratio: to the launcher in the same round)`,
    "",
  );
  report(
    `| config | tree PSS MB after load | × launcher | parent PSS MB | tree PSS MB at ${opts.settleTree} s | × launcher | parent PSS MB |`,
  );
  report("| --- | --- | --- | --- | --- | --- | --- |");
  for (const name of names) {
    const s = rows[name] ?? [];
    const cells = (k: "early" | "late") => {
      const ratio = median(s.map((x, i) => x[k].treePss / (base[i]?.[k].treePss ?? Number.NaN)));
      return `${mb(median(s.map((x) => x[k].treePss)))} | ${ratio.toFixed(2)}× | ${mb(median(s.map((x) => x[k].parent.pss)))}`;
    };
    report(`| ${name} | ${cells("early")} | ${cells("late")} |`);
  }
}

// --- launching ---

async function launch(how: Launch, n: number) {
  const p = port;
  port += 2;
  // The command and its environment are made before the clock starts: a launch times the manager only.
  const cmd = how.cmd(n, p);
  const env = { ...process.env, PORT: String(p), HOST, NODE_ENV: "production", ...how.env?.(p) };
  const t0 = performance.now();
  const proc = Bun.spawn(cmd, {
    cwd: benchDir,
    env,
    stdio: ["ignore", Bun.file(join(workDir, "launch.log")), Bun.file(join(workDir, "launch.err"))],
    detached: true,
  });
  live.add(proc.pid);
  const ok = await waitPids(p, n, 20_000);
  const ms = performance.now() - t0;
  if (!ok) console.error(`${cmd.join(" ")}: not all ${n} workers answered`);
  const stop = async () => {
    proc.kill("SIGTERM");
    const deadline = performance.now() + 8000;
    while (performance.now() < deadline && proc.exitCode === null) await Bun.sleep(20);
    killTree(proc.pid, "SIGKILL");
    await proc.exited;
    live.delete(proc.pid);
  };
  return { pid: proc.pid, port: p, ms, stop };
}

/** True once `n` distinct pids answered /pid on fresh connections. */
async function waitPids(p: number, n: number, timeoutMs: number): Promise<boolean> {
  const pids = new Set<number>();
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline && pids.size < n) {
    try {
      const res = await fetch(`http://${HOST}:${p}/pid`, {
        headers: { connection: "close" },
        keepalive: false,
      });
      pids.add(Number((await res.text()).split(/\s+/)[1]));
    } catch {
      await Bun.sleep(5);
    }
  }
  return pids.size >= n;
}

/** A little traffic, so each worker has served (its handlers compiled, its buffers allocated). */
async function lightLoad(p: number): Promise<void> {
  const wrk = Bun.which("wrk");
  if (wrk) {
    for (const [path, s] of [
      ["/", 2],
      ["/json", 1],
    ] as const)
      await Bun.spawn([wrk, "-t1", "-c16", `-d${s}s`, `http://${HOST}:${p}${path}`], { stdout: "ignore" })
        .exited;
    return;
  }
  for (let i = 0; i < 3000; i++) await (await fetch(`http://${HOST}:${p}${i % 3 ? "/" : "/json"}`)).text();
}

function killTree(pid: number, signal: NodeJS.Signals): void {
  for (const p of [...descendants(pid), pid]) {
    try {
      process.kill(p, signal);
    } catch {
      // gone already
    }
  }
}

// --- /proc ---

const CATEGORIES = ["text", "rodata", "data", "anon", "other"] as const;
type Category = (typeof CATEGORIES)[number];
interface ProcSample {
  pid: number;
  rss: number;
  pss: number;
  map: Record<Category, { rss: number; pss: number }>;
  /** KB of the embedded program (.bun section) resident, for processes of the supervisor binary. */
  embeddedKb?: number;
}
interface TreeSample {
  treePss: number;
  parent: ProcSample;
  workers: ProcSample[];
}

function treeSample(pid: number): TreeSample {
  const parent = procSample(pid);
  const kids = descendants(pid).map(procSample);
  return { treePss: parent.pss + kids.reduce((a, k) => a + k.pss, 0), parent, workers: kids };
}

/** RSS and PSS (KB) of one process, whole and by mapping, from /proc/PID/smaps. */
function procSample(pid: number): ProcSample {
  const exe = readExe(pid);
  const map = Object.fromEntries(CATEGORIES.map((c) => [c, { rss: 0, pss: 0 }])) as ProcSample["map"];
  let cat: Category = "other";
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = line.match(/^[0-9a-f]+-[0-9a-f]+ (\S{4}) \S+ \S+ \S+\s*(.*)$/);
    if (head) {
      const [, perms, name] = head as unknown as [string, string, string];
      if (name === exe) cat = perms.startsWith("r-x") ? "text" : perms.startsWith("rw") ? "data" : "rodata";
      else cat = name === "" || name === "[heap]" || name.startsWith("[anon") ? "anon" : "other";
      continue;
    }
    const field = line.match(/^(Rss|Pss):\s+(\d+) kB/);
    if (field) map[cat][field[1] === "Rss" ? "rss" : "pss"] += Number(field[2]);
  }
  const rss = CATEGORIES.reduce((a, c) => a + map[c].rss, 0);
  const pss = CATEGORIES.reduce((a, c) => a + map[c].pss, 0);
  const embeddedKb = exe === sup && embedded ? residentKb(pid, embedded.addr, embedded.size) : undefined;
  return { pid, rss, pss, map, embeddedKb };
}

function readExe(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return "";
  }
}

/** KB of [addr, addr+size) present in memory, from /proc/PID/pagemap (bit 63 of each page's entry). */
function residentKb(pid: number, addr: number, size: number): number | undefined {
  const page = 4096;
  const first = Math.floor(addr / page);
  const count = Math.ceil((addr + size) / page) - first;
  const buf = Buffer.alloc(count * 8);
  try {
    const fd = openSync(`/proc/${pid}/pagemap`, "r");
    readSync(fd, buf, 0, buf.length, first * 8);
    closeSync(fd);
  } catch {
    return undefined;
  }
  let present = 0;
  for (let i = 0; i < count; i++) if (buf.readBigUInt64LE(i * 8) >> 63n) present++;
  return (present * page) / 1024;
}

function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (state === "Z") continue;
      children.set(Number(ppid), [...(children.get(Number(ppid)) ?? []), Number(name)]);
    } catch {
      // exited while we looked
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const next = children.get(queue.shift() as number) ?? [];
    found.push(...next);
    queue.push(...next);
  }
  return found;
}

/** Address and size of a section of a 64-bit little-endian ELF file (the embedded program: `.bun`). */
function elfSection(file: string, wanted: string): { addr: number; size: number } | undefined {
  const fd = openSync(file, "r");
  try {
    const read = (pos: number, len: number) => {
      const b = Buffer.alloc(len);
      readSync(fd, b, 0, len, pos);
      return b;
    };
    const h = read(0, 64);
    if (h.toString("latin1", 1, 4) !== "ELF" || h[4] !== 2) return undefined;
    const shoff = Number(h.readBigUInt64LE(0x28));
    const [shentsize, shnum, shstrndx] = [h.readUInt16LE(0x3a), h.readUInt16LE(0x3c), h.readUInt16LE(0x3e)];
    const headers = read(shoff, shentsize * shnum);
    const section = (i: number) => ({
      name: headers.readUInt32LE(i * shentsize),
      addr: Number(headers.readBigUInt64LE(i * shentsize + 0x10)),
      offset: Number(headers.readBigUInt64LE(i * shentsize + 0x18)),
      size: Number(headers.readBigUInt64LE(i * shentsize + 0x20)),
    });
    const strtab = section(shstrndx);
    const names = read(strtab.offset, strtab.size);
    for (let i = 0; i < shnum; i++) {
      const s = section(i);
      if (names.toString("latin1", s.name, names.indexOf(0, s.name)) === wanted)
        return { addr: s.addr, size: s.size };
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}

// --- helpers ---

function privateCopy(from: string, name: string): string {
  const to = join(workDir, name);
  rmSync(to, { force: true }); // a process of an earlier run may still execute the old copy
  copyFileSync(from, to);
  return to;
}

/** Write the binaries' pages back, then drop them from the page cache (GNU dd: `count=0` with
 * `iflag=nocache` drops the whole file), so the next process reads them from disk. */
function dropPageCache(files: string[]): void {
  Bun.spawnSync(["sync"]);
  for (const file of files) Bun.spawnSync(["dd", `if=${file}`, "iflag=nocache", "count=0", "status=none"]);
}

function buildSupervisor(): string {
  const dist = join(root, "dist", "supervisor");
  if (!existsSync(dist)) Bun.spawnSync([process.execPath, join(root, "scripts", "build.ts")], { cwd: root });
  return dist;
}

function readOptions(argv: string[]) {
  const flags: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const m = (argv[i] as string).match(/^--([\w-]+)(?:=(.*))?$/);
    if (!m)
      throw new Error(`unknown argument ${argv[i]} (options: --n --rounds --idle --launches --parts --out)`);
    flags[(m[1] as string).toUpperCase().replace(/-/g, "_")] = m[2] ?? (argv[++i] as string);
  }
  const get = (key: string, fallback: string) => flags[key] ?? process.env[key] ?? fallback;
  const num = (key: string, fallback: number) => Math.max(1, Number(get(key, String(fallback))) || fallback);
  return {
    n: num("N", 4),
    rounds: num("ROUNDS", 2),
    idle: num("IDLE", 30),
    settle: num("SETTLE", 30),
    settleTree: num("SETTLE_TREE", 60),
    launches: num("LAUNCHES", 6),
    parts: get("PARTS", "tree,costs,idle,launch").split(","),
    supervisorBin: get("SUPERVISOR_BIN", ""),
    before: get("BEFORE", ""),
    configs: get("CONFIGS", "").split(",").filter(Boolean),
    portBase: num("PORT_BASE", 18900),
    out: get("OUT", ""),
  };
}

function push<T>(rows: Record<string, T[]>, key: string, value: T): void {
  rows[key] ??= [];
  rows[key].push(value);
}

function median(values: number[]): number {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!s.length) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

function kb(bytes: number): number {
  return Math.round(bytes / 1024);
}
function mb(kib: number): string {
  return Number.isFinite(kib) ? (kib / 1024).toFixed(1) : "–";
}

await main();
