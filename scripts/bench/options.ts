// scripts/bench.ts's settings (flags or environment variables; its header lists them) and the
// places every part of the benchmark shares.

import { mkdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const root = resolve(import.meta.dir, "../..");
export const benchDir = join(root, "scripts", "bench");
export const workDir = join(tmpdir(), "supervisor-bench");
mkdirSync(workDir, { recursive: true });
export const HOST = "127.0.0.1";
export const WRK = Bun.which("wrk");
export const bun = process.execPath;
/** Every configuration scripts/bench/peers.ts knows, the default of CONFIGS. */
export const CONFIG_NAMES = [
  "ceiling",
  "supervisor",
  "node-cluster",
  "pm2-cluster",
  "gunicorn-uvicorn",
  "uvicorn-workers",
];

export type BenchOptions = ReturnType<typeof readOptions>;

export function readOptions(argv: string[]) {
  const flags: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--help" || arg === "-h") {
      const header = readFileSync(join(root, "scripts", "bench.ts"), "utf8").split("\n\n")[0] ?? "";
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
    idle: num("IDLE", 30),
    idleSettle: num("IDLE_SETTLE", 30),
    kills: num("KILLS", 5),
    reloads: Math.max(1, num("RELOADS", 3)),
    reloadDur: num("RELOAD_DUR", 9),
    wrkThreads: num("WRK_THREADS", 1),
    wrkConns: num("WRK_CONNS", 64),
    portBase: num("PORT_BASE", 18100),
    supervisorBin: get("SUPERVISOR_BIN", ""),
    out: get("OUT", ""),
    /** Also run scripts/bench/memory.ts (the memory breakdown and idle cost), BEFORE passed on. */
    memory: get("MEMORY", "") === "1",
    before: get("BEFORE", ""),
  };
}

/** Progress lines go to stderr; the report alone to stdout. */
export function log(message: string): void {
  console.error(message);
}
