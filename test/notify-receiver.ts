// The receiving end of systemd's notify socket, for tests: an AF_UNIX datagram socket bound to a
// path or an abstract "@name", read without blocking (bun has no unix datagram sockets; bun:ffi).

import { dlopen, ptr } from "bun:ffi";

const libc = dlopen("libc.so.6", {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  recv: { args: ["i32", "ptr", "u64", "i32"], returns: "i64" },
  close: { args: ["i32"], returns: "i32" },
  clock_gettime: { args: ["i32", "ptr"], returns: "i32" },
}).symbols;

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_DONTWAIT = 0x40;

export interface NotifyReceiver extends Disposable {
  address: string;
  /** Every datagram received so far, in order (each may hold several lines). */
  messages(): string[];
}

export function notifyReceiver(address: string): NotifyReceiver {
  const abstract = address.startsWith("@");
  const name = Buffer.from(abstract ? `\0${address.slice(1)}` : address);
  const sockaddr = new Uint8Array(110);
  new DataView(sockaddr.buffer).setUint16(0, AF_UNIX, true);
  sockaddr.set(name, 2);
  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || libc.bind(fd, ptr(sockaddr), 2 + name.length + (abstract ? 0 : 1)) !== 0) {
    throw new Error(`cannot bind a unix datagram socket at ${address}`);
  }
  const received: string[] = [];
  const buffer = new Uint8Array(4096);
  return {
    address,
    messages() {
      for (;;) {
        const n = Number(libc.recv(fd, ptr(buffer), buffer.length, MSG_DONTWAIT));
        if (n < 0) return received;
        received.push(Buffer.from(buffer.subarray(0, n)).toString());
      }
    },
    [Symbol.dispose]() {
      libc.close(fd);
    },
  };
}

/** CLOCK_MONOTONIC in µs, the clock of MONOTONIC_USEC. */
export function monotonicUsec(): bigint {
  const timespec = new BigInt64Array(2);
  libc.clock_gettime(1, ptr(timespec));
  return (timespec[0] as bigint) * 1_000_000n + (timespec[1] as bigint) / 1_000n;
}
