// What every part of the worker shares: its config, the channel to the supervisor, how it fails to
// boot, and where it is in its life (serving, then closing, then stopped).

import { CHANNEL_FD, type WorkerConfig, type WorkerMessage } from "./protocol.ts";

const { fstatSync, writeSync } = require("node:fs") as typeof import("node:fs");

/** Exit code for "the app cannot boot" (Gunicorn's WORKER_BOOT_ERROR); the supervisor does not retry it at start-up. */
export const BOOT_ERROR = 3;

export const config: WorkerConfig = readConfig();

/** `closing`: responses tell keep-alive clients to close (the drain has begun). */
export const phase = { closing: false };

/** The supervisor's end of fd 3 is there (a worker started by hand has none). */
export const channelOpen = isSocket(CHANNEL_FD);

/** One JSON line to the supervisor. The write is synchronous (a message is in the socket's buffer
 * before the next line of code runs, so one sent just before an exit arrives); false when the
 * supervisor is gone or there is no channel. */
export function send(message: WorkerMessage): boolean {
  if (!channelOpen) return false;
  const bytes = Buffer.from(`${JSON.stringify(message)}\n`);
  // The socket may be non-blocking: a short write or EAGAIN (a full buffer, 200 KB of unread
  // messages) is retried a bounded number of times rather than lost silently.
  for (let offset = 0, tries = 0; offset < bytes.length && tries < 1000; tries++) {
    try {
      offset += writeSync(CHANNEL_FD, bytes, offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN") return false; // EPIPE: supervisor gone
    }
  }
  return true;
}

export function bootFailed(message: string): never {
  // The supervisor prints the message once for all workers.
  if (!send({ type: "boot-error", message })) console.error(message);
  return process.exit(BOOT_ERROR);
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

function isSocket(fd: number): boolean {
  try {
    return fstatSync(fd).isSocket();
  } catch {
    return false;
  }
}

function readConfig(): WorkerConfig {
  const config = JSON.parse(process.env.SUPERVISOR_WORKER_CONFIG ?? "null") as WorkerConfig | null;
  if (config) return config;
  console.error("this is a supervisor worker; start it with `supervisor run <app>`");
  return process.exit(2);
}
