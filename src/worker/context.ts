// What every part of the worker shares: its config, the channel to the supervisor, how it fails to
// boot, and where it is in its life (serving, then closing, then stopped).

import { CHANNEL_FD, type WorkerConfig, type WorkerMessage } from "./protocol.ts";

/** Exit code for "the app cannot boot" (Gunicorn's WORKER_BOOT_ERROR); the supervisor does not retry it at start-up. */
export const BOOT_ERROR = 3;

export const config: WorkerConfig = readConfig();

/** `closing`: responses tell keep-alive clients to close (the drain has begun). */
export const phase = { closing: false };

/** The channel's writes, one after another: each message is one `Bun.write` to the socket, chained so
 * that they arrive in the order they were sent. `Bun.write` is what the beat file is written with, so
 * the channel adds no native path of its own (a FileSink cost every worker 0.3 MB of RSS more;
 * node:fs would cost ~5 MB; docs/DESIGN.md). A write pends only while the socket is full, and the
 * supervisor reads every line as it comes. */
let lastWrite: Promise<boolean> = Promise.resolve(true);

/** One JSON line to the supervisor on its channel; resolves false when it cannot be sent (no
 * channel: a worker started by hand; EPIPE: the supervisor is gone). */
export function send(message: WorkerMessage): Promise<boolean> {
  if (!config.channel) return Promise.resolve(false);
  const line = `${JSON.stringify(message)}\n`;
  // Never rejected (a throw of Bun.write itself included), so one failed write does not stop the next.
  lastWrite = lastWrite
    .then(() => Bun.write(Bun.file(CHANNEL_FD), line))
    .then(
      () => true,
      () => false,
    );
  return lastWrite;
}

export function bootFailed(message: string): never {
  // The supervisor prints the message once for all workers.
  void send({ type: "boot-error", message }).then((delivered) => {
    if (!delivered) console.error(message);
    process.exit(BOOT_ERROR);
  });
  // Exit even if the channel never takes it.
  setTimeout(() => process.exit(BOOT_ERROR), 1000);
  // Keep the module from going on while the message is sent.
  return new Promise<never>(() => {}) as never;
}

export function errorText(error: unknown): string {
  const text = Bun.inspect(error, { colors: false }).trim();
  return text || String(error);
}

/** A line on stderr, prefixed like the supervisor's own lines about this worker. */
export function warn(message: string): void {
  console.error(`worker ${config.slot} (pid ${process.pid}): ${message}`);
}

// --- internal ---

function readConfig(): WorkerConfig {
  const config = JSON.parse(process.env.SUPERVISOR_WORKER_CONFIG ?? "null") as WorkerConfig | null;
  if (config) return config;
  console.error("this is a supervisor worker; start it with `supervisor run <app>`");
  return process.exit(2);
}
