// systemd's notify protocol (sd_notify(3)) for `Type=notify` units: READY=1 once every worker is
// ready, RELOADING=1 (with MONOTONIC_USEC) when a rolling reload starts and READY=1 when it ends,
// STOPPING=1 when the shutdown starts, STATUS= with the worker count, and WATCHDOG=1 at half of
// WATCHDOG_USEC. Loaded only when NOTIFY_SOCKET is set.
//
// Why bun:ffi: the protocol is one datagram per message on an AF_UNIX SOCK_DGRAM socket. Bun has
// no unix datagram sockets (Bun.udpSocket wants an IP port, node:dgram knows only udp4/udp6), and
// spawning `systemd-notify` costs a process per message and, being a child, needs NotifyAccess=all
// and races its own exit (systemd may no longer attribute the message to the unit). libc's
// socket() + sendto() through bun:ffi is four calls, also on musl, and sends from our own pid.
// Measured (scripts/bench/notify-cost.ts): module load + dlopen ~3 ms (3.7 ms of CPU) once, at
// start-up, only under systemd; then ~6 µs per message (the receiver's read included).

import { readyWorkers } from "../core/lifecycle.ts";
import type { State } from "../core/types.ts";
import { openLibc } from "../os/libc.ts";
import type { Logger } from "./log.ts";

/** Messages that change the unit's state: never dropped (a status line or a watchdog ping may be). */
const STATE_MESSAGES = ["READY", "RELOADING", "STOPPING"];

export interface Notifier {
  /** Called after every turn of the supervisor's loop with the state before and after it. */
  onTransition(before: State, after: State): void;
  /** Send one message ("READY=1\nSTATUS=..."); false when it could not be sent. `mayDrop`: do not
   * wait when systemd's receive queue is full (a STATUS line), else wait as sd_notify does. */
  send(message: string, mayDrop?: boolean): boolean;
  close(): void;
}

type Env = Record<string, string | undefined>;

/**
 * A notifier for $NOTIFY_SOCKET, or undefined when it is not set. The variables are removed from
 * `env` (our process.env) so workers and --pre-start do not inherit them: their messages would be
 * ignored by systemd (NotifyAccess=main) or, worse, taken for ours with NotifyAccess=all.
 */
export function systemdNotifier(logger: Logger, env: Env = process.env): Notifier | undefined {
  const address = env.NOTIFY_SOCKET;
  const watchdogUsec = Number(env.WATCHDOG_USEC);
  const watchdogPid = env.WATCHDOG_PID;
  for (const key of ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"]) delete env[key];
  if (!address) return undefined;
  let socket: DatagramSender;
  try {
    socket = openDatagramSender(address);
  } catch (error) {
    logger.warn(
      `NOTIFY_SOCKET=${address}: ${error instanceof Error ? error.message : error}; systemd will not be notified`,
    );
    return undefined;
  }
  let warned = false;
  const send = (message: string, mayDrop = false) => {
    const ok = socket.send(message, mayDrop);
    const EAGAIN = 11;
    if (!ok && !warned && !(mayDrop && socket.lastErrno() === EAGAIN)) {
      warned = true;
      logger.warn(`cannot notify systemd at ${address} (errno ${socket.lastErrno()})`);
    }
    return ok;
  };

  let watchdog: Timer | undefined;
  const ours = watchdogPid === undefined || watchdogPid === "" || Number(watchdogPid) === process.pid;
  if (Number.isFinite(watchdogUsec) && watchdogUsec > 0 && ours) {
    // The loop that sends this is the supervisor's own event loop: a hung supervisor stops the pings.
    watchdog = setInterval(() => send("WATCHDOG=1", true), Math.max(1, Math.floor(watchdogUsec / 2000)));
    watchdog.unref();
  }

  return {
    send,
    onTransition(before, after) {
      const messages = transitionMessages(before, after, socket.monotonicUsec);
      if (messages) send(messages, !STATE_MESSAGES.some((name) => messages.startsWith(`${name}=`)));
    },
    close() {
      clearInterval(watchdog);
      socket.close();
    },
  };
}

/** What systemd should hear about one turn of the loop, as one datagram (lines), or "" for nothing. */
export function transitionMessages(before: State, after: State, monotonicUsec: () => bigint): string {
  const lines: string[] = [];
  if (after.phase === "stopping" && before.phase !== "stopping") lines.push("STOPPING=1");
  else if (after.phase === "running" && before.phase === "booting") lines.push("READY=1");
  else if (after.phase === "running" && after.reload && !before.reload)
    lines.push("RELOADING=1", `MONOTONIC_USEC=${monotonicUsec()}`);
  else if (after.phase === "running" && before.reload && !after.reload) lines.push("READY=1");
  const status = statusLine(after);
  if (lines.length > 0 || status !== statusLine(before)) lines.push(`STATUS=${status}`);
  return lines.join("\n");
}

// --- internal ---

function statusLine(s: State): string {
  const ready = readyWorkers(s).length;
  if (s.phase === "stopping") return `stopping: ${s.workers.length} worker(s) left`;
  const what = s.reload ? "reloading, " : s.phase === "booting" ? "starting, " : "";
  return `${what}${ready} of ${s.target} workers ready`;
}

/** One message to `address`, outside a notifier's life: the upgrade's `MAINPID=` (src/runtime/upgrade.ts).
 * Throws when the socket cannot be opened. */
export function sendOnce(address: string, message: string): void {
  const sender = openDatagramSender(address);
  try {
    sender.send(message, false);
  } finally {
    sender.close();
  }
}

interface DatagramSender {
  send(message: string, dontWait: boolean): boolean;
  monotonicUsec(): bigint;
  lastErrno(): number;
  close(): void;
}

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const CLOCK_MONOTONIC = 1;
const SUN_PATH_BYTES = 108;

/**
 * An unconnected AF_UNIX datagram socket that sends to `address`: a path, or "@name" for Linux's
 * abstract namespace (a leading NUL byte, no terminating one, as sd_notify does). The receive
 * queue of a unix datagram socket is short (net.unix.max_dgram_qlen, 10 here): a state change waits
 * for room, as sd_notify does (systemd reads it at once); a STATUS line or a watchdog ping is dropped
 * rather than stalling the loop.
 */
function openDatagramSender(address: string): DatagramSender {
  if (process.platform !== "linux") throw new Error("the notify protocol is implemented for Linux only");
  const { ptr } = require("bun:ffi") as typeof import("bun:ffi");
  const symbols = {
    socket: { args: ["i32", "i32", "i32"], returns: "i32" },
    sendto: { args: ["i32", "ptr", "u64", "i32", "ptr", "u32"], returns: "i64" },
    close: { args: ["i32"], returns: "i32" },
    clock_gettime: { args: ["i32", "ptr"], returns: "i32" },
    __errno_location: { args: [], returns: "ptr" },
  } as const;
  const libc = openLibc(symbols, "the notify protocol").symbols;

  const name = Buffer.from(address.startsWith("@") ? `\0${address.slice(1)}` : address);
  const abstract = address.startsWith("@");
  if (!abstract && !address.startsWith("/")) throw new Error("must be an absolute path or @name");
  if (name.length + (abstract ? 0 : 1) > SUN_PATH_BYTES) throw new Error("address too long for sun_path");
  const sockaddr = new Uint8Array(2 + SUN_PATH_BYTES);
  new DataView(sockaddr.buffer).setUint16(0, AF_UNIX, true);
  sockaddr.set(name, 2);
  const sockaddrLength = 2 + name.length + (abstract ? 0 : 1);

  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const errno = () => new Int32Array(toArrayBufferAt(libc.__errno_location(), 4))[0] ?? 0;
  if (fd < 0) throw new Error(`socket(AF_UNIX, SOCK_DGRAM) failed (errno ${errno()})`);
  const timespec = new BigInt64Array(2);
  let lastErrno = 0;
  return {
    send(message, dontWait) {
      const bytes = Buffer.from(message);
      const flags = MSG_NOSIGNAL | (dontWait ? MSG_DONTWAIT : 0);
      const sent = libc.sendto(fd, ptr(bytes), bytes.length, flags, ptr(sockaddr), sockaddrLength);
      if (Number(sent) === bytes.length) return true;
      lastErrno = errno();
      return false;
    },
    monotonicUsec() {
      libc.clock_gettime(CLOCK_MONOTONIC, ptr(timespec));
      return (timespec[0] as bigint) * 1_000_000n + (timespec[1] as bigint) / 1_000n;
    },
    lastErrno: () => lastErrno,
    close: () => void libc.close(fd),
  };
}

function toArrayBufferAt(pointer: unknown, bytes: number): ArrayBuffer {
  const { toArrayBuffer } = require("bun:ffi") as typeof import("bun:ffi");
  return toArrayBuffer(pointer as import("bun:ffi").Pointer, 0, bytes);
}
