// The throughput cost of --access-log and --admin against plain `supervisor run`, as ratios from one
// run: configurations alternate (ABC, CBA, ...) so machine drift hits all of them alike.
// Usage: bun scripts/bench/options-cost.ts [rounds=4] [seconds=5]     (needs wrk; builds dist/supervisor)
// --access-log writes to a file (as a log shipper would read it); --admin is scraped every second.
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
let port = 18_700 + Math.floor(Math.random() * 100);

async function measure(flags: string[]): Promise<number> {
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
  const wrk = Bun.spawnSync(["wrk", "-t1", "-c64", `-d${seconds}s`, `http://127.0.0.1:${appPort}/`]);
  scraping = false;
  await scraper;
  proc.kill("SIGTERM");
  await proc.exited;
  rmSync(log, { force: true });
  return parseWrk(wrk.stdout.toString()).rps;
}

const names = Object.keys(configs);
for (let r = 0; r < rounds; r++) {
  for (const name of r % 2 === 0 ? names : [...names].reverse()) {
    const rps = await measure(configs[name] as string[]);
    (results[name] as number[]).push(rps);
    console.log(`round ${r + 1} ${name}: ${Math.round(rps).toLocaleString("en")} req/s`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const base = results.plain as number[];
console.log(
  `\n| supervisor -w 2 | req/s (median of ${rounds}) | ratio to plain (median of per-round ratios) |`,
);
console.log("| --- | --- | --- |");
for (const name of names) {
  const xs = results[name] as number[];
  const ratio = median(xs.map((x, i) => x / (base[i] as number)));
  console.log(`| ${name} | ${Math.round(median(xs)).toLocaleString("en")} | ${ratio.toFixed(3)}× |`);
}
