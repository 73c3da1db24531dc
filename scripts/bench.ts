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
//   IDLE     seconds the manager is watched idle (default 30), from IDLE_SETTLE seconds after its
//            workers answered (default 30: Bun's GC timer ticks every second while a young process's
//            heap still grows, and the supervisor unmaps its start-up code 1 s after its workers
//            settle; neither is idle cost); KILLS restarts timed (default 5)
//   RELOADS  SIGHUPs sent during each reload run (default 3); RELOAD_DUR its seconds (default 9)
//   WRK_THREADS, WRK_CONNS  load generator (default 1 thread, 64 connections)
//   PORT_BASE first port (default 18100; each launch takes the next one, up to PORT_BASE+799)
//   SUPERVISOR_BIN  the binary to measure (default: a copy of dist/supervisor, built if missing)
//   OUT      also write the markdown report to this file
//   MEMORY=1 then run scripts/bench/memory.ts too, at the largest N (where each megabyte goes, idle
//            cost, launch), its report appended; BEFORE=<binary> is passed on to measure one alongside
// Logs of every launch go to $TMPDIR/supervisor-bench/.

// This file holds the order of the phases; its parts are under scripts/bench/: options.ts (settings),
// peers.ts (what is compared), launch.ts (starting and stopping), measure.ts (load, CPU, memory) and
// report.ts (the markdown).

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { killGroup, launch, live, prepareSupervisor } from "./bench/launch.ts";
import {
  askPid,
  closeLoad,
  collectPids,
  cpuOf,
  processMemory,
  since,
  treeMemory,
  wrk,
} from "./bench/measure.ts";
import { HOST, log, readOptions, WRK, workDir } from "./bench/options.ts";
import { type Config, peerConfigs } from "./bench/peers.ts";
import { type ExtraRecord, fmt, type RunRecord, renderReport } from "./bench/report.ts";

const opts = readOptions(process.argv.slice(2));
const runs: RunRecord[] = [];
const extras: ExtraRecord[] = [];
const skipped: string[] = [];

await main();

async function main(): Promise<void> {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      for (const pgid of live) killGroup(pgid, "SIGKILL");
      process.exit(130);
    });
  }
  const configs = peerConfigs(prepareSupervisor(opts))
    .filter((c) => opts.configs.includes(c.name))
    .filter((c) => {
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

  let report = renderReport(configs, { opts, runs, extras, skipped });
  if (opts.memory) report += `\n\n${memoryReport()}`;
  console.log(`\n${report}`);
  if (opts.out) writeFileSync(opts.out, report);
  writeFileSync(join(workDir, "results.json"), JSON.stringify({ opts, runs, extras, skipped }, null, 2));
}

// --- phases ---

/** scripts/bench/memory.ts as its own process (its own ports, after ours are closed). */
function memoryReport(): string {
  log("bench: memory and idle cost (scripts/bench/memory.ts)");
  const run = Bun.spawnSync([process.execPath, join(import.meta.dir, "bench", "memory.ts")], {
    env: {
      ...process.env,
      // bench.ts's own choices are not memory.ts's (its CONFIGS names differ; OUT is ours).
      CONFIGS: undefined,
      OUT: undefined,
      N: String(Math.max(...opts.ns)),
      PORT_BASE: String(opts.portBase + 800),
      ...(opts.supervisorBin ? { SUPERVISOR_BIN: opts.supervisorBin } : {}),
      ...(opts.before ? { BEFORE: opts.before } : {}),
    },
    stdout: "pipe",
    stderr: "inherit",
  });
  return run.stdout.toString().trim();
}

async function throughputRun(cfg: Config, n: number, round: number): Promise<RunRecord> {
  const rec: RunRecord = { config: cfg.name, n, round };
  const app = await launch(opts, cfg, n, `${cfg.name}-n${n}-r${round}`);
  try {
    Object.assign(rec, app.launch);
    if (rec.allPids === undefined) {
      log(`  ${cfg.name} N=${n}: not all ${n} workers answered; see ${app.logFile}`);
      return rec;
    }
    if (WRK) {
      const base = `http://${HOST}:${app.port}`;
      if (opts.warm > 0) await wrk(opts, `${base}/`, opts.warm, false);
      rec.keepAlive = await wrk(opts, `${base}/`, opts.dur, false);
      rec.close = await wrk(opts, `${base}/`, opts.dur, true);
      rec.json = await wrk(opts, `${base}/json`, opts.dur, false);
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
  const app = await launch(opts, cfg, n, `${cfg.name}-n${n}-extras`);
  try {
    if (app.launch.allPids === undefined) return rec;
    // Idle: let start-up settle, then the manager's own CPU time over IDLE seconds.
    await Bun.sleep(opts.idleSettle * 1000);
    const before = cpuOf(app.pid);
    await Bun.sleep(opts.idle * 1000);
    const after = cpuOf(app.pid);
    rec.idleTicks = after.ticks - before.ticks;
    rec.idleCpuPct = (since(before.threads, after.threads).ns / (opts.idle * 1e9)) * 100;
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
          ? closeLoad(opts, app.port, opts.reloadDur)
          : wrk(opts, `http://${HOST}:${app.port}/`, opts.reloadDur, false);
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
