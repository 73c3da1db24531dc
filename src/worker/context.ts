// What every part of the worker shares: its config, the channel to the supervisor, how it fails to
// boot, and where it is in its life (serving, then closing, then stopped).

import type { Socket } from "bun";
import { CHANNEL_FD, type WorkerConfig, type WorkerMessage } from "./protocol.ts";

/** Exit code for "the app cannot boot" (Gunicorn's WORKER_BOOT_ERROR); the supervisor does not retry it at start-up. */
export const BOOT_ERROR = 3;

export const config: WorkerConfig = readConfig();

/** `closing`: responses tell keep-alive clients to close (the drain has begun). */
export const phase = { closing: false };

/** The channel as a Bun socket on fd 3 (`Bun.connect({ fd })`, which Bun's types do not list): the
 * socket code is the app server's own, where a FileSink writer and a stream reader of fd 3 cost
 * every worker ~0.4 MB more of RSS (docs/DESIGN.md). Its end, or a channel that cannot be opened,
 * is the supervisor's death (parent.ts). */
const channel: Promise<Socket | undefined> = config.channel
  ? Bun.connect({
      fd: CHANNEL_FD,
      socket: { data() {}, end: channelEnded, close: channelEnded, error: channelEnded },
    } as unknown as import("bun").UnixSocketOptions<undefined>).catch(() => {
      channelEnded();
      return undefined;
    })
  : Promise.resolve(undefined);
const channelEndedListeners: (() => void)[] = [];

/** Called once, when the supervisor's end of the channel is gone (it exited or died). */
export function onChannelEnd(listener: () => void): void {
  channelEndedListeners.push(listener);
}

/** Stop the channel keeping the process alive (its shutdown is done). */
export const unrefChannel = () => void channel.then((socket) => socket?.unref());

/** One JSON line to the supervisor on its channel; resolves false when it cannot be sent (no
 * channel: a worker started by hand; the supervisor is gone). A line is a few hundred bytes into an
 * empty socket buffer: written whole, or the supervisor is not reading any more. */
export async function send(message: WorkerMessage): Promise<boolean> {
  const socket = await channel;
  if (!socket) return false;
  const line = `${JSON.stringify(message)}\n`;
  try {
    return socket.write(line) === Buffer.byteLength(line);
  } catch {
    return false;
  }
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

let channelOpen = true;
function channelEnded(): void {
  if (!channelOpen) return;
  channelOpen = false;
  for (const listener of channelEndedListeners) listener();
}

function readConfig(): WorkerConfig {
  const config = JSON.parse(process.env.SUPERVISOR_WORKER_CONFIG ?? "null") as WorkerConfig | null;
  if (config) return config;
  console.error("this is a supervisor worker; start it with `supervisor run <app>`");
  return process.exit(2);
}
