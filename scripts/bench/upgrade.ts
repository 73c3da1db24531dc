// Takeover time and failed requests of a supervisor upgrade to another build, from the compiled
// binary: test/fixtures/upgrade-under-load.ts, ROUNDS times per load kind (as root in a private network
// namespace with tcp_migrate_req=1, as the tests run it). Takeover = the upgrade asked (`kill -USR2`
// for close, `supervisor upgrade` for keep-alive) → the old supervisor exited; it includes the new
// supervisor's start, its workers' boot and the old workers' drain (-w 2, the pid-app fixture).
// Usage: bun scripts/bench/upgrade.ts [rounds=5]
import { join } from "node:path";
import { FIXTURES, runScenario } from "../../test/helpers.ts";

const rounds = Number(process.argv[2] ?? 5);
interface Round {
  takeoverMs: number;
  adminGapMs: number;
  ok: number;
  failed: number;
  errors: string[];
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

for (const mode of ["keep-alive", "close"] as const) {
  const runs: Round[] = [];
  let isolated = false;
  for (let i = 0; i < rounds; i++) {
    const run = await runScenario<Round>(join(FIXTURES, "upgrade-under-load.ts"), [mode]);
    isolated = run.isolated;
    runs.push(run);
  }
  const times = runs.map((r) => r.takeoverMs);
  const gaps = runs.map((r) => r.adminGapMs);
  console.log(
    `${mode.padEnd(10)} takeover ms: ${times.join(", ")} (median ${median(times)}); admin port unanswered at most ${Math.max(...gaps)} ms; requests ok ${runs.reduce((n, r) => n + r.ok, 0)}, failed ${runs.reduce((n, r) => n + r.failed, 0)}${isolated ? " (private netns, tcp_migrate_req=1)" : ""}`,
  );
  for (const r of runs) if (r.errors.length) console.log(`  errors: ${r.errors.join("; ")}`);
}
