// Zero-downtime load test (issue 3): wrk against `dist/supervisor run examples/hello/app.ts -w 2` while
// (1) sending HUP several times, (2) TTIN then TTOU, (3) recycling with --max-requests.
// Reports requests, failed requests (non-2xx), socket errors and the worker pids before and after.
// Usage: bun scripts/load.ts [seconds per phase, default 8]     (needs wrk: apt-get install -y wrk)
import { parseWrk, startSupervisor, waitFor } from "./lib/proc.ts";

const seconds = Number(process.argv[2] ?? 8);
const port = 18_500 + Math.floor(Math.random() * 400);
const app = "examples/hello/app.ts";
if (!Bun.which("wrk")) {
  console.log("wrk is not installed (apt-get install -y wrk): nothing measured");
  process.exit(0);
}

async function phase(
  name: string,
  extraArgs: string[],
  during: (sup: Sup) => Promise<string>,
  replaces = true,
) {
  const sup = await startSupervisor([app, "-w", "2", "-p", String(port), ...extraArgs]);
  const before = sup.workers().sort();
  const wrk = Bun.spawn(["wrk", "-t2", "-c32", `-d${seconds}s`, `http://127.0.0.1:${port}/`], {
    stdout: "pipe",
  });
  await Bun.sleep(500);
  const what = await during(sup);
  const result = parseWrk(await new Response(wrk.stdout).text());
  await wrk.exited;
  const after = sup.workers().sort();
  const code = await sup.stop();
  const replaced = before.every((pid) => !after.includes(pid));
  console.log(
    `| ${name} | ${what} | ${result.requests} | ${result.non2xx} | ${result.socketErrors}${result.socketErrors ? ` (${result.socketDetail.replace("Socket errors: ", "")})` : ""} | ${before.join(" ")} | ${after.join(" ")} | ${replaces ? (replaced ? "yes" : "no") : "n/a"} | ${code} |`,
  );
  return result.non2xx + result.socketErrors;
}

type Sup = Awaited<ReturnType<typeof startSupervisor>>;

console.log(`wrk -t2 -c32 -d${seconds}s, keep-alive, against ${app} on port ${port}\n`);
console.log(
  "| phase | what happened | requests | failed (non-2xx) | socket errors | pids before | pids after | all replaced | exit |",
);
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
let failures = 0;
failures += await phase("reload", [], async (sup) => {
  const n = 4;
  for (let i = 1; i <= n; i++) {
    sup.proc.kill("SIGHUP");
    await waitFor(() => (sup.output().match(/reload finished/g)?.length ?? 0) >= i, `reload ${i}`);
    await Bun.sleep((seconds * 1000 - 1500) / n);
  }
  return `${n}× HUP, each a rolling reload`;
});
failures += await phase(
  "scale",
  [],
  async (sup) => {
    sup.proc.kill("SIGTTIN");
    await waitFor(() => sup.workers().length === 3, "3 workers");
    await Bun.sleep(seconds * 300);
    sup.proc.kill("SIGTTOU");
    await waitFor(() => sup.workers().length === 2, "2 workers");
    return "TTIN (2→3), then TTOU (3→2)";
  },
  false,
);
failures += await phase(
  "recycle",
  ["--max-requests", "20000", "--max-requests-jitter", "2000"],
  async (sup) => {
    await Bun.sleep(seconds * 1000 - 600);
    return `--max-requests 20000: ${sup.output().match(/will be replaced \(max-requests/g)?.length ?? 0} workers recycled`;
  },
);
console.log(`\n${failures === 0 ? "0 failed requests, 0 socket errors" : `${failures} failures`}`);
