// Where a worker's start-up time goes: each piece timed from spawn to exit (or to its "ready" message),
// the runs of all pieces interleaved, median of RUNS (default 15). Pieces run as plain bun and as the
// compiled supervisor acting as bun (BUN_BE_BUN=1), as its workers do.
// usage: bun scripts/bench/startup.ts [SUPERVISOR_BIN]   (default: a copy of dist/supervisor)

import { copyFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { openChannel, workerLaunch } from "../../src/runtime/host.ts";
import { workerConfig } from "../../test/worker-harness.ts";

const root = resolve(import.meta.dir, "../..");
const runs = Number(process.env.RUNS ?? 15);
const port = Number(process.env.PORT_BASE ?? 18900);
const dir = join(tmpdir(), "supervisor-bench");
mkdirSync(dir, { recursive: true });
const bin = process.argv[2] ? resolve(process.argv[2]) : join(dir, "supervisor-startup");
if (!process.argv[2]) copyFileSync(join(root, "dist", "supervisor"), bin);
const bun = process.execPath;
const app = join(import.meta.dir, "hello.ts");
const asBun = { ...process.env, BUN_BE_BUN: "1" };
const serveAndExit = `const app=(await import(${JSON.stringify(app)})).default;const s=Bun.serve({...app,port:${port},hostname:"127.0.0.1",reusePort:true});s.stop(true);process.exit(0)`;
const ffi = `const {dlopen}=require("bun:ffi");dlopen("libc.so.6",{prctl:{args:["i32","u64","u64","u64","u64"],returns:"i32"},getppid:{args:[],returns:"i32"}}).symbols.prctl(1,15,0,0,0)`;

// The supervisor's real worker: src/worker/ bundled into one script in the environment, run by a `-e`
// stub, exactly as src/runtime/host.ts starts it (its workerLaunch), here under the binary.
const worker = (p: number) =>
  workerLaunch(
    { ...workerConfig(app, p), host: "127.0.0.1", gracefulTimeoutMs: 1000, heartbeatMs: 0 },
    asBun,
    { executable: bin },
  );

interface Piece {
  name: string;
  cmd: string[];
  env?: Record<string, string | undefined>;
  /** Time to the first IPC message (then kill), instead of time to exit. */
  ipc?: boolean;
  /** Time to the first message on the supervisor's channel (fd 3; then kill), instead of time to exit. */
  channel?: boolean;
  /** Time to a stdout line matching this (then SIGTERM and wait), instead of time to exit. */
  line?: RegExp;
}

const pieces: Piece[] = [
  { name: "bun -e 0 (runtime start, exit)", cmd: [bun, "-e", "0"] },
  { name: "binary as bun -e 0", cmd: [bin, "-e", "0"], env: asBun },
  { name: "binary --version (the supervisor CLI program)", cmd: [bin, "--version"] },
  { name: "bun -e import(app)", cmd: [bun, "-e", `await import(${JSON.stringify(app)})`] },
  {
    name: "binary as bun -e import(app)",
    cmd: [bin, "-e", `await import(${JSON.stringify(app)})`],
    env: asBun,
  },
  { name: "bun -e import(app)+Bun.serve+stop", cmd: [bun, "-e", serveAndExit] },
  { name: "binary as bun -e import(app)+Bun.serve+stop", cmd: [bin, "-e", serveAndExit], env: asBun },
  { name: "binary as bun -e bun:ffi dlopen+prctl", cmd: [bin, "-e", ffi], env: asBun },
  {
    name: "ceiling worker (bun), spawn to IPC ready",
    cmd: [bun, join(import.meta.dir, "ceiling-worker.ts")],
    env: { ...process.env, PORT: String(port + 1), HOST: "127.0.0.1" },
    ipc: true,
  },
  {
    name: "ceiling worker under the binary as bun, spawn to IPC ready",
    cmd: [bin, join(import.meta.dir, "ceiling-worker.ts")],
    env: { ...asBun, PORT: String(port + 2), HOST: "127.0.0.1" },
    ipc: true,
  },
  {
    name: "supervisor worker (src/worker/main.ts), spawn to its ready message",
    ...worker(port + 3),
    channel: true,
  },
  ...[1, 4].flatMap((n): Piece[] => [
    {
      name: `ceiling launcher -w ${n}, spawn to its ready line`,
      cmd: [bun, join(import.meta.dir, "ceiling.ts"), String(n)],
      env: { ...process.env, PORT: String(port + 4 + n), HOST: "127.0.0.1" },
      line: /^ready:/,
    },
    {
      name: `supervisor run -w ${n}, spawn to its ready line`,
      cmd: [bin, "run", app, "-w", String(n), "-p", String(port + 10 + n), "-H", "127.0.0.1"],
      line: /\bready: /,
    },
  ]),
];

const times = new Map<string, number[]>(pieces.map((p) => [p.name, []]));
for (let r = 0; r < runs; r++) {
  for (const piece of pieces) times.get(piece.name)?.push(await time(piece));
}
console.log(`| piece (median of ${runs}, ms; min–max) | ms |\n| --- | --- |`);
for (const piece of pieces) {
  const t = (times.get(piece.name) ?? []).sort((a, b) => a - b);
  const med = t[Math.floor(t.length / 2)] ?? Number.NaN;
  console.log(`| ${piece.name} | ${med.toFixed(1)} (${t[0]?.toFixed(1)}–${t[t.length - 1]?.toFixed(1)}) |`);
}

async function time(piece: Piece): Promise<number> {
  const t0 = performance.now();
  if (piece.ipc || piece.channel) {
    let ready: () => void = () => {};
    const got = new Promise<void>((r) => {
      ready = r;
    });
    const proc = piece.ipc
      ? Bun.spawn(piece.cmd, {
          env: piece.env ?? process.env,
          stdio: ["ignore", "ignore", "inherit"],
          serialization: "json",
          ipc: () => ready(),
        })
      : Bun.spawn(piece.cmd, {
          env: piece.env ?? process.env,
          stdio: ["ignore", "ignore", "inherit", "pipe"],
        });
    const channel = piece.channel ? openChannel(proc, () => ready()) : undefined;
    await Promise.race([got, proc.exited, Bun.sleep(5000)]);
    const ms = performance.now() - t0;
    proc.kill("SIGKILL");
    await proc.exited;
    await channel?.close();
    return ms;
  }
  if (piece.line) {
    const proc = Bun.spawn(piece.cmd, {
      env: piece.env ?? process.env,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let ms = Number.NaN;
    let buf = "";
    for await (const chunk of proc.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      if (piece.line.test(buf.split("\n").find((l) => piece.line?.test(l)) ?? "")) {
        ms = performance.now() - t0;
        break;
      }
    }
    proc.kill("SIGTERM");
    await Promise.race([proc.exited, Bun.sleep(5000)]);
    proc.kill("SIGKILL");
    await proc.exited;
    return ms;
  }
  const proc = Bun.spawn(piece.cmd, {
    env: piece.env ?? process.env,
    stdio: ["ignore", "ignore", "inherit"],
  });
  await proc.exited;
  return performance.now() - t0;
}
