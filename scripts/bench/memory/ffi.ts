// Preload for scripts/bench/memory.ts: what the worker's parent-death signal (bun:ffi prctl) loads.
const { dlopen } = require("bun:ffi") as typeof import("bun:ffi");
dlopen("libc.so.6", {
  prctl: { args: ["i32", "u64", "u64", "u64", "u64"], returns: "i32" },
  getppid: { args: [], returns: "i32" },
});
