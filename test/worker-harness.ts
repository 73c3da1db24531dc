// Start workers the way src/runtime/host.ts does (its workerLaunch) — `bun -e <stub> <entry>` with the worker's code and its config in
// the environment, its channel on fd 3 — without the supervisor, so worker features can be tested with
// any WorkerConfig. The test process plays the supervisor: it is the workers' parent and holds the other end of their channels.
// Every worker is SIGKILLed when the `await using` scope ends.

import { openChannel, workerLaunch } from "../src/runtime/host.ts";
import type { WorkerConfig, WorkerMessage } from "../src/worker/protocol.ts";
import { collectOutput, freePort, ROOT } from "./helpers.ts";

const transpile = (source: string) => new Bun.Transpiler({ loader: "ts" }).transformSync(source);

export interface HarnessWorker {
  proc: Bun.Subprocess;
  pid: number;
  slot: number;
  messages: WorkerMessage[];
  stdout(): string;
  stderr(): string;
  exited: Promise<number>;
}

export interface Workers extends AsyncDisposable {
  port: number;
  workers: HarnessWorker[];
  /** Resolves when every worker has sent {type:"ready"}; rejects at the first that exits or fails to boot. */
  ready(timeoutMs?: number): Promise<void>;
  /** Every worker's stdout, concatenated. */
  stdout(): string;
  stderr(): string;
}

export interface HarnessOptions {
  workers?: number;
  port?: number;
  env?: Record<string, string | undefined>;
  cwd?: string;
  config?: Partial<WorkerConfig>;
  /** Where the workers' stdout goes; "pipe" (the default) collects it for stdout(). */
  stdout?: "pipe" | "ignore" | Bun.BunFile;
  /** Another version of the worker's TypeScript source (benchmarks compare with git's). */
  workerSource?: string;
}

/** A worker's config with the supervisor's defaults, as tests and benchmarks start one by hand. */
export function workerConfig(entry: string, port: number, slot = 0): WorkerConfig {
  return {
    entry,
    port,
    host: "0.0.0.0",
    slot,
    channel: true,
    gracefulTimeoutMs: 5_000,
    bootTimeoutMs: 30_000,
    heartbeatMs: 1_000,
    maxRequests: 0,
    maxRequestsJitter: 0,
    accessLog: false,
    logFormat: "pretty",
    idleTimeout: { seconds: 30, explicit: false },
    maxBody: { bytes: 128 * 2 ** 20, explicit: false },
    development: false,
  };
}

export function startWorkers(entry: string, options: HarnessOptions = {}): Workers {
  const port = options.port ?? freePort();
  const js = options.workerSource === undefined ? undefined : transpile(options.workerSource);
  const workers = Array.from({ length: options.workers ?? 1 }, (_, slot) => {
    const config: WorkerConfig = { ...workerConfig(entry, port, slot), ...options.config };
    const messages: WorkerMessage[] = [];
    const launch = workerLaunch(config, { ...process.env, ...options.env }, { js });
    const proc = Bun.spawn(launch.cmd, {
      cwd: options.cwd ?? ROOT,
      env: launch.env,
      stdio: ["ignore", options.stdout ?? "pipe", "pipe", "pipe"],
    });
    const channel = openChannel(proc, (message) => messages.push(message));
    const stdout = proc.stdout as ReadableStream<Uint8Array> | number | undefined;
    const output = collectOutput(stdout instanceof ReadableStream ? stdout : undefined, proc.stderr);
    const pumped = output.done;
    const exited = proc.exited.then(async (code) => {
      await channel.close();
      await pumped;
      return code;
    });
    return { proc, pid: proc.pid, slot, messages, stdout: output.stdout, stderr: output.stderr, exited };
  });
  let exitedEarly: number | undefined;
  for (const w of workers) void w.exited.then((code) => (exitedEarly ??= code));

  return {
    port,
    workers,
    async ready(timeoutMs = 10_000) {
      const deadline = performance.now() + timeoutMs;
      while (!workers.every((w) => w.messages.some((m) => m.type === "ready"))) {
        // A boot failure is final: report it rather than wait for the deadline.
        const failed = workers.find((w) => w.messages.some((m) => m.type === "boot-error"));
        if (failed || exitedEarly !== undefined || performance.now() > deadline) {
          const what = failed ? JSON.stringify(failed.messages) : `exit ${exitedEarly ?? "none yet"}`;
          throw new Error(`workers not ready after ${timeoutMs} ms (${what}); stderr:\n${this.stderr()}`);
        }
        await Bun.sleep(10);
      }
    },
    stdout: () => workers.map((w) => w.stdout()).join(""),
    stderr: () => workers.map((w) => w.stderr()).join(""),
    async [Symbol.asyncDispose]() {
      for (const w of workers) w.proc.kill("SIGKILL");
      await Promise.all(workers.map((w) => w.exited));
    },
  };
}
