// `bun scripts/release-check.ts [--no-build] [--out dir]`: build every release binary
// (scripts/release.ts, which downloads the other targets' runtimes from the npm registry) and run
// the ones this machine can run, not just read their headers: `--version`, then an app with
// 2 workers, each of which must answer one request, then TERM and exit 0.
//
// - linux-x64: natively (on an x64 host).
// - linux-arm64: under qemu-user through binfmt_misc (Debian: `apt-get install -y qemu-user-static
//   binfmt-support libc6-arm64-cross`; the last one is the aarch64 glibc, given as QEMU_LD_PREFIX).
//   binfmt is what makes the workers run too: the supervisor spawns its own executable.
// - linux-x64-musl: with the musl loader (Debian's `musl` package) when a musl libstdc++.so.6 is
//   present; the binary needs one (Alpine: `apk add libstdc++`), and Debian ships none: then it is
//   reported as not run, with that reason.
// - darwin-arm64: header-checked only (Mach-O arm64 with a code signature): no macOS here.
// Exit 1 when a binary that could run failed a check.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { hostTarget, release } from "./release.ts";

const ROOT = resolve(import.meta.dir, "..");
const args = process.argv.slice(2);
const outFlag = args.indexOf("--out");
const out = resolve(outFlag === -1 ? join(ROOT, "dist", "release") : (args[outFlag + 1] ?? "."));
const AARCH64_SYSROOT = "/usr/aarch64-linux-gnu";

interface Runner {
  /** Why it cannot run here, or the environment to run it with. */
  skip?: string;
  env?: Record<string, string>;
}

const APP = `export default {
  fetch() {
    return new Response("pid " + process.pid + "\\n");
  },
};
`;

async function runnerFor(target: string, host: string): Promise<Runner> {
  if (target === host) return {};
  if (target.startsWith("darwin"))
    return { skip: "no macOS here: header-checked only (Mach-O arm64, signed)" };
  if (target === "linux-arm64" && host === "linux-x64") {
    if (!binfmtEnabled("qemu-aarch64")) {
      return { skip: "no qemu-aarch64 binfmt handler (apt-get install -y qemu-user-static binfmt-support)" };
    }
    if (!existsSync(join(AARCH64_SYSROOT, "lib", "ld-linux-aarch64.so.1"))) {
      return { skip: `no aarch64 glibc at ${AARCH64_SYSROOT} (apt-get install -y libc6-arm64-cross)` };
    }
    return { env: { QEMU_LD_PREFIX: AARCH64_SYSROOT } };
  }
  if (target === "linux-x64-musl" && host === "linux-x64") {
    if (!existsSync("/lib/ld-musl-x86_64.so.1")) return { skip: "no musl loader (apt-get install -y musl)" };
    const file = join(out, `supervisor-${pkg.version}-${target}`);
    const list = Bun.spawnSync(["/lib/ld-musl-x86_64.so.1", "--list", file], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const missing = /Error loading shared library (\S+?):/.exec(list.stderr.toString())?.[1];
    if (missing) {
      return {
        skip: `needs a musl ${missing} (Alpine: apk add libstdc++); Debian's musl package has none, so it is header-checked only`,
      };
    }
    return {};
  }
  return { skip: `cannot run ${target} binaries on ${host}` };
}

function binfmtEnabled(name: string): boolean {
  try {
    return readFileSync(`/proc/sys/fs/binfmt_misc/${name}`, "utf8").startsWith("enabled");
  } catch {
    return false;
  }
}

/** --version, then 2 workers that each answer a request, then TERM → exit 0. */
async function exercise(file: string, env: Record<string, string>): Promise<string> {
  const version = Bun.spawnSync([file, "--version"], { env: { ...process.env, ...env }, stdout: "pipe" });
  const printed = version.stdout.toString().trim();
  if (version.exitCode !== 0 || printed !== pkg.version) {
    throw new Error(`--version printed ${JSON.stringify(printed)} (exit ${version.exitCode})`);
  }
  const dir = mkdtempSync(join(tmpdir(), "sv-release-check-"));
  const app = join(dir, "app.ts");
  writeFileSync(app, APP);
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  const started = performance.now();
  const proc = Bun.spawn(
    [file, "run", app, "-w", "2", "-p", String(port), "--control", join(dir, "c.sock")],
    {
      env: { ...process.env, ...env },
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  let output = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) output += new TextDecoder().decode(chunk);
  };
  const pumped = Promise.all([pump(proc.stdout), pump(proc.stderr)]);
  try {
    const deadline = performance.now() + 60_000;
    while (!/ready: 2 workers/.test(output)) {
      if (performance.now() > deadline || proc.exitCode !== null) throw new Error(`not ready:\n${output}`);
      await Bun.sleep(50);
    }
    const readyMs = Math.round(performance.now() - started);
    const pids = new Set<string>();
    while (pids.size < 2) {
      if (performance.now() > deadline) throw new Error(`only ${pids.size} worker(s) answered`);
      const res = await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: "close" } });
      pids.add((await res.text()).trim());
    }
    proc.kill("SIGTERM");
    const code = await proc.exited;
    await pumped;
    if (code !== 0) throw new Error(`exit code ${code} after TERM:\n${output}`);
    return `--version ${printed}; 2 workers ready in ${readyMs} ms, each answered (${[...pids].join(", ")}); TERM → exit 0`;
  } finally {
    if (proc.exitCode === null) proc.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

const host = (await hostTarget()).name;
if (!args.includes("--no-build")) {
  await release({ hostOnly: false, out, cache: join(ROOT, "dist", "bun-runtimes") });
}
let failed = 0;
const results: { target: string; result: string }[] = [];
for (const target of ["linux-x64", "linux-arm64", "linux-x64-musl", "darwin-arm64"]) {
  const file = join(out, `supervisor-${pkg.version}-${target}`);
  let result: string;
  if (!existsSync(file)) {
    result = "FAILED: not built";
    failed++;
  } else {
    const runner = await runnerFor(target, host);
    if (runner.skip) {
      result = `not run: ${runner.skip}`;
    } else {
      try {
        result = `ran${runner.env?.QEMU_LD_PREFIX ? " under qemu-user" : ""}: ${await exercise(file, runner.env ?? {})}`;
      } catch (error) {
        result = `FAILED: ${error instanceof Error ? error.message : error}`;
        failed++;
      }
    }
  }
  results.push({ target, result });
  console.log(`${target.padEnd(15)} ${result}`);
}
console.log(JSON.stringify({ host, results }));
process.exit(failed > 0 ? 1 : 0);
