// node:http frameworks and Bun apps under the supervisor, each against its own ceiling (issue 10):
// - req/s of `supervisor run app -w N` against the same app run as N plain `bun app` processes on N
//   ports (node:http ignores reusePort outside node:cluster, so N ports is the framework's own
//   ceiling); one wrk per port or per worker (-t1 -c16), in parallel, summed; ABBA rounds, median ratio;
// - failed requests (non-2xx + socket errors) across 3 HUP reloads under wrk -t2 -c32 keep-alive load;
// - ms from TERM to exit with the app's 1.5 s SIGTERM shutdown work.
// Usage: bun scripts/bench/frameworks.ts [seconds per load, default 5]   (needs wrk; builds dist/supervisor)
// wrk shares the machine's cores with the servers: compare ratios within one run.
import { dirname, join } from "node:path";
import { FRAMEWORK_APPS } from "../../test/fixtures/frameworks/apps.ts";
import { parseWrk, ROOT, startSupervisor, waitFor } from "../lib/proc.ts";

const seconds = Number(process.argv[2] ?? 5);
// Both sides in production mode, as deployed (Express, for one, is faster with it).
process.env.NODE_ENV = "production";
const N = 2;
const fixtures = join(ROOT, "test/fixtures");
const APPS: { name: string; app: string; env: Record<string, string>; shared?: boolean }[] = [
  { name: "Bun.serve (export default), ceiling on N ports", app: "lifespan/bun-app.ts", env: {} },
  {
    name: "Bun.serve (export default), ceiling with reusePort on 1 port",
    app: "lifespan/bun-app.ts",
    env: {},
    shared: true,
  },
  ...FRAMEWORK_APPS,
];
if (!Bun.which("wrk")) {
  console.log("wrk is not installed (apt-get install -y wrk): nothing measured");
  process.exit(0);
}
let nextPort = 19_000 + Math.floor(Math.random() * 500) * 4;
const port = () => nextPort++;

/** N wrk clients at once (-t1 -c16), one per URL; summed req/s and failures. */
async function wrkAll(urls: string[], secs = seconds) {
  const runs = urls.map((url) =>
    Bun.spawn(["wrk", "-t1", "-c16", `-d${secs}s`, url], { stdout: "pipe", stderr: "ignore" }),
  );
  const results = await Promise.all(runs.map(async (r) => parseWrk(await new Response(r.stdout).text())));
  return {
    rps: results.reduce((sum, r) => sum + r.rps, 0),
    failed: results.reduce((sum, r) => sum + r.non2xx + r.socketErrors, 0),
  };
}

async function answers(p: number) {
  try {
    return (await fetch(`http://127.0.0.1:${p}/`)).ok;
  } catch {
    return false;
  }
}

/** N plain processes of the app. `shared`: an exported Bun app served with reusePort on ONE port, as
 * the supervisor does (the same connection-hash balance); else each on its own port (node:http
 * ignores reusePort outside node:cluster). */
async function ceiling(app: (typeof APPS)[number], shared = false) {
  const file = join(fixtures, app.app);
  const one = port();
  const ports = shared ? Array.from({ length: N }, () => one) : Array.from({ length: N }, port);
  const serveShared = `const m=await import(${JSON.stringify(file)});Bun.serve({...m.default,port:${one},reusePort:true,development:false})`;
  const procs = ports.map((p) =>
    Bun.spawn(shared ? [process.execPath, "-e", serveShared] : [process.execPath, file], {
      cwd: dirname(file),
      env: { ...process.env, ...app.env, PORT: String(p) },
      stdio: ["ignore", "ignore", "inherit"],
    }),
  );
  for (const p of new Set(ports)) await waitFor(() => answers(p), `plain ${app.name} on ${p}`, 15_000);
  const result = await wrkAll(ports.map((p) => `http://127.0.0.1:${p}/`));
  for (const proc of procs) proc.kill("SIGKILL");
  await Promise.all(procs.map((proc) => proc.exited));
  return result;
}

async function supervised(app: (typeof APPS)[number]) {
  const file = join(fixtures, app.app);
  const p = port();
  const sup = await startSupervisor([file, "-w", String(N), "-p", String(p)], {
    cwd: dirname(file),
    env: app.env,
  });
  const result = await wrkAll(Array.from({ length: N }, () => `http://127.0.0.1:${p}/`));
  await sup.stop();
  return result;
}

async function reloads(app: (typeof APPS)[number]) {
  const file = join(fixtures, app.app);
  const p = port();
  const sup = await startSupervisor([file, "-w", String(N), "-p", String(p)], {
    cwd: dirname(file),
    env: app.env,
  });
  const wrk = Bun.spawn(["wrk", "-t2", "-c32", `-d${seconds + 3}s`, `http://127.0.0.1:${p}/`], {
    stdout: "pipe",
  });
  await Bun.sleep(500); // wrk at full speed first
  for (let i = 1; i <= 3; i++) {
    sup.proc.kill("SIGHUP");
    await waitFor(() => (sup.output().match(/reload finished/g)?.length ?? 0) >= i, `reload ${i}`, 30_000);
  }
  const result = parseWrk(await new Response(wrk.stdout).text());
  await sup.stop();
  return { requests: result.requests, failed: result.non2xx + result.socketErrors };
}

async function termToExit(app: (typeof APPS)[number]) {
  const file = join(fixtures, app.app);
  const sup = await startSupervisor([file, "-w", String(N), "-p", String(port())], {
    cwd: dirname(file),
    env: { ...app.env, SHUTDOWN_MS: "1500" },
  });
  const t0 = performance.now();
  const code = await sup.stop();
  return { ms: Math.round(performance.now() - t0), code };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

console.log(
  `N=${N}, wrk -t1 -c16 -d${seconds}s per port/worker (summed), ABBA (2 pairs); reload: wrk -t2 -c32, 3 HUPs\n`,
);
console.log(
  "| app | ceiling req/s | supervisor req/s | ratio | failed across 3 reloads (of requests) | TERM → exit with 1.5 s shutdown work |",
);
console.log("| --- | --- | --- | --- | --- | --- |");
for (const app of APPS) {
  const shared = app.shared === true;
  const a1 = await ceiling(app, shared);
  const b1 = await supervised(app);
  const b2 = await supervised(app);
  const a2 = await ceiling(app, shared);
  const ratio = median([b1.rps / a1.rps, b2.rps / a2.rps]);
  const reload = await reloads(app);
  const term = await termToExit(app);
  console.log(
    `| ${app.name} | ${Math.round((a1.rps + a2.rps) / 2)} | ${Math.round((b1.rps + b2.rps) / 2)} | ${ratio.toFixed(3)}× | ${reload.failed} of ${reload.requests} | ${term.ms} ms (exit ${term.code}) |`,
  );
}
