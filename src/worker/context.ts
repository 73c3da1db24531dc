// What every part of the worker shares: its config, the channel to the supervisor, how it fails to
// boot, and where it is in its life (serving, then closing, then stopped).

import type { WorkerConfig, WorkerMessage } from "./protocol.ts";

/** Exit code for "the app cannot boot" (Gunicorn's WORKER_BOOT_ERROR); the supervisor does not retry it at start-up. */
export const BOOT_ERROR = 3;

export const config: WorkerConfig = readConfig();

/** `closing`: responses tell keep-alive clients to close (the drain has begun). */
export const phase = { closing: false };

export function send(message: WorkerMessage): void {
  process.send?.(message);
}

export function bootFailed(message: string): never {
  if (process.send) {
    process.send({ type: "boot-error", message } satisfies WorkerMessage, undefined, undefined, () =>
      process.exit(BOOT_ERROR),
    );
    // The supervisor prints the message once for all workers; exit even if the channel never flushes.
    setTimeout(() => process.exit(BOOT_ERROR), 1000);
  } else {
    console.error(message);
    process.exit(BOOT_ERROR);
  }
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
