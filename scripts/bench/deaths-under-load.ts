// Deaths under load are not a crash loop: 1 request in 50 exits its worker (test/fixtures/
// crash-under-load-app.ts), `-w 2 --max-restarts 3`, steady load from sequential clients that pause
// between requests; prints the share of requests that succeeded and whether the supervisor stayed up.
// Usage: bun scripts/bench/deaths-under-load.ts [seconds=10] [clients=4] [pauseMs=10]
import { fixture, startSupervisor, steadyLoad } from "../../test/helpers.ts";

const [seconds = 10, clients = 4, pauseMs = 10] = process.argv.slice(2).map(Number);
await using sup = startSupervisor([
  "run",
  fixture("crash-under-load-app.ts"),
  "-w",
  "2",
  "--max-restarts",
  "3",
]);
await sup.waitForOutput(/ready:/, 30_000);
const { ok, failed } = await steadyLoad(sup.port, clients, seconds, pauseMs, Number.POSITIVE_INFINITY);
const output = sup.output();
const up = sup.proc.exitCode === null;
const deaths = output.match(/died:/g)?.length ?? 0;
console.log(
  `${ok + failed} requests, ${((100 * ok) / (ok + failed)).toFixed(1)}% succeeded, ${deaths} worker deaths, ` +
    `supervisor ${up ? "still up" : `exited ${sup.proc.exitCode}`}${/giving up/.test(output) ? " (gave up: crash loop)" : ""}`,
);
process.kill(sup.pid, "SIGTERM");
await sup.exited;
