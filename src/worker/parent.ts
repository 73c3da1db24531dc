// Die with the supervisor: PR_SET_PDEATHSIG delivers SIGTERM the moment it dies (Linux, glibc or musl);
// the IPC channel's disconnect is the portable fallback (1–2 s late in a compiled binary), and covers
// the time before prctl is set. prctl is set once the worker is ready, not before: bun:ffi's dlopen
// compiles its trampolines (~4 ms of CPU), which four workers starting at once on two cores would
// add to every launch and every restart.
// `getppid()` reads the parent afresh: Bun's process.ppid is read once at start-up and never changes.

export interface ParentWatch {
  getppid: () => number;
  armDeathSignal: () => void;
}

export function watchParent(parentPid: number, parentLost: () => void): ParentWatch {
  process.on("disconnect", parentLost);
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
        // not this libc; try the next, else rely on the disconnect event
      }
    }
    // The supervisor may have died before prctl took effect.
    if (getppid() !== parentPid) parentLost();
  };
  return { getppid: () => getppid(), armDeathSignal };
}
