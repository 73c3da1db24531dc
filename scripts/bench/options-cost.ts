// The throughput cost of --access-log and --admin against plain `supervisor run`, as ratios from one
// run: configurations alternate (ABC, CBA, ...) so machine drift hits all of them alike.
// Usage: bun scripts/bench/options-cost.ts [rounds=4] [seconds=5]     (needs wrk; builds dist/supervisor)
// --access-log writes to a file (as a log shipper would read it); --admin (which also turns on the
// app's request metrics in every worker) is scraped every second. wrk's p99 latency is compared too.
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseWrk, ROOT, waitFor } from "../lib/proc.ts";

const rounds = Number(process.argv[2] ?? 4);
const seconds = Number(process.argv[3] ?? 5);
if (!Bun.which("wrk")) {
  console.log("wrk is not installed (apt-get install -y wrk): nothing measured");
  process.exit(0);
}
const binary = join(ROOT, "dist", "supervisor");
if (!(await Bun.file(binary).exists())) await Bun.$`bun ${join(ROOT, "scripts", "build.ts")}`.quiet();

const configs: Record<string, string[]> = {
  plain: [],
  "--access-log": ["--access-log"],
  "--admin (scraped 1/s)": ["--admin", "ADMIN"],
};
const results: Record<string, number[]> = Object.fromEntries(Object.keys(configs).map((k) => [k, []]));
const p99s: Record<string, number[]> = Object.fromEntries(Object.keys(configs).map((k) => [k, []]));
let port = 18_700 + Math.floor(Math.random() * 100);

async function measure(flags: string[]): Promise<{ rps: number; p99Ms: number }> {
  const appPort = port++;
  const adminPort = port++;
  const log = join(tmpdir(), `options-cost-${appPort}.log`);
  const args = flags.map((f) => (f === "ADMIN" ? String(adminPort) : f));
  const proc = Bun.spawn(
    [binary, "run", join(ROOT, "scripts/bench/hello.ts"), "-w", "2", "-p", String(appPort), ...args],
    {
      stdout: Bun.file(log),
      stderr: "ignore",
    },
  );
  await waitFor(() => {
    try {
      return readFileSync(log, "utf8").includes("ready:");
    } catch {
      return false;
    }
  }, "ready");
  let scraping = flags.includes("--admin");
  const scraper = (async () => {
    while (scraping) {
      await fetch(`http://127.0.0.1:${adminPort}/metrics`)
        .then((r) => r.text())
        .catch(() => "");
      await Bun.sleep(1_000);
    }
  })();
  const wrk = Bun.spawnSync([
    "wrk",
    "-t1",
    "-c64",
    "--latency",
    `-d${seconds}s`,
    `http://127.0.0.1:${appPort}/`,
  ]);
  scraping = false;
  await scraper;
  proc.kill("SIGTERM");
  await proc.exited;
  rmSync(log, { force: true });
  const result = parseWrk(wrk.stdout.toString());
  return { rps: result.rps, p99Ms: result.p99Ms ?? Number.NaN };
}

const names = Object.keys(configs);
for (let r = 0; r < rounds; r++) {
  for (const name of r % 2 === 0 ? names : [...names].reverse()) {
    const { rps, p99Ms } = await measure(configs[name] as string[]);
    (results[name] as number[]).push(rps);
    (p99s[name] as number[]).push(p99Ms);
    console.log(`round ${r + 1} ${name}: ${Math.round(rps).toLocaleString("en")} req/s, p99 ${p99Ms} ms`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const base = results.plain as number[];
const baseP99 = p99s.plain as number[];
console.log(
  `\n| supervisor -w 2 | req/s (median of ${rounds}) | req/s ratio to plain | p99 (median) | p99 ratio to plain |`,
);
console.log("| --- | --- | --- | --- | --- |");
for (const name of names) {
  const xs = results[name] as number[];
  const ratio = median(xs.map((x, i) => x / (base[i] as number)));
  const ys = p99s[name] as number[];
  const p99Ratio = median(ys.map((y, i) => y / (baseP99[i] as number)));
  console.log(
    `| ${name} | ${Math.round(median(xs)).toLocaleString("en")} | ${ratio.toFixed(3)}× | ${median(ys).toFixed(2)} ms | ${p99Ratio.toFixed(3)}× |`,
  );
}
