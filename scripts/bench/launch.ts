// Launching and stopping what scripts/bench.ts measures: each configuration in its own process
// group on a port of its own, its output kept with timestamps (written to $TMPDIR/supervisor-bench/),
// the time to its first 200 and to answers from all N workers; and the binary measured, a private copy.

import { copyFileSync, existsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { descendants, processTable } from "../../src/os/proc.ts";
import { askPid } from "./measure.ts";
import { type BenchOptions, benchDir, bun, HOST, log, root, workDir } from "./options.ts";
import type { Config } from "./peers.ts";

/** Process groups to kill if the benchmark is interrupted. */
export const live = new Set<number>();
let nextPort: number | undefined;

interface Line {
  at: number;
  text: string;
}
export interface Launched {
  pid: number;
  port: number;
  logFile: string;
  lines: Line[];
  launch: { first200?: number; readyLine?: number; allPids?: number };
  waitLine(re: RegExp, timeoutMs: number, from?: number): Promise<Line | undefined>;
  stop(): Promise<void>;
}

export async function launch(opts: BenchOptions, cfg: Config, n: number, tag: string): Promise<Launched> {
  const port = nextPort ?? opts.portBase;
  nextPort = port + 1 > opts.portBase + 799 ? opts.portBase : port + 1;
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
  const table = processTable();
  const found = new Set<number>();
  for (const p of table) if (p.pgrp === leader && p.state !== "Z") found.add(p.pid);
  for (const p of descendants(leader, table)) if (p.state !== "Z") found.add(p.pid);
  return [...found];
}

export function killGroup(leader: number, signal: NodeJS.Signals): void {
  for (const pid of [-leader, ...groupMembers(leader)]) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export function prepareSupervisor(opts: BenchOptions): string {
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
