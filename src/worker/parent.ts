// Die with the supervisor: PR_SET_PDEATHSIG delivers SIGTERM the moment it dies (Linux, glibc or musl);
// the end-of-file on the channel (fd 3, whose other end only the supervisor holds) is the portable
// fallback and covers the time before prctl is set. prctl is set once the worker is ready, not
// before: bun:ffi's dlopen compiles its trampolines (~4 ms of CPU), which four workers starting at once
// on two cores would add to every launch and every restart.
// `getppid()` reads the parent afresh: Bun's process.ppid is read once at start-up and never changes.

import { channelOpen } from "./context.ts";
import { CHANNEL_FD } from "./protocol.ts";

export interface ParentWatch {
  getppid: () => number;
  armDeathSignal: () => void;
  /** Stop watching the channel, so that it no longer keeps the process alive (its shutdown is done). */
  unref: () => void;
}

export function watchParent(parentPid: number, parentLost: () => void): ParentWatch {
  const reader = channelOpen ? Bun.file(CHANNEL_FD).stream().getReader() : undefined;
  let watching = true;
  // The supervisor never writes: the read ends only when its end is closed, by its exit or death.
  void reader?.read().then(
    () => watching && parentLost(),
    () => watching && parentLost(),
  );
  let getppid = () => process.ppid;
  const armDeathSignal = () => {
    if (process.platform !== "linux") return;
    for (const libc of ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`]) {
      try {
        const { dlopen } = require("bun:ffi") as typeof import("bun:ffi");
        const lib = dlopen(libc, {
          prctl: { args: ["i32", "u64", "u64", "u64", "u64"], returns: "i32" },
          getppid: { args: [], returns: "i32" },
        });
        const PR_SET_PDEATHSIG = 1;
        const SIGTERM = 15;
        lib.symbols.prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
        getppid = () => lib.symbols.getppid();
        break;
      } catch {
        // not this libc; try the next, else rely on the channel's end-of-file
      }
    }
    // The supervisor may have died before prctl took effect.
    if (getppid() !== parentPid) parentLost();
  };
  const unref = () => {
    watching = false;
    void reader?.cancel().catch(() => {});
  };
  return { getppid: () => getppid(), armDeathSignal, unref };
}
