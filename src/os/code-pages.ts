// The supervisor's process runs most of its code once: reading argv and the config file, checking the
// entry, claiming the port, opening the control socket, the first spawn. Those pages of the binary's
// machine code stay mapped for the life of the process, counted in its RSS and PSS and in the tree's,
// and most of them no other process maps (docs/BENCHMARKS.md, "Seventh round": the tree at `-w 4`
// ~3 MB smaller without them). Each time its workers settle (all ready, none being replaced: after the
// start, a reload, a restart), the supervisor unmaps its executable mapping with `MADV_DONTNEED`
// (start.ts): machine code is never written, so nothing is lost. The pages stay in
// the page cache, where the kernel frees them when it needs memory, as it would any file's; what the
// process runs again (the idle timer, a restart's spawn, a reload) faults back in from there, a
// minor fault each (the first restart after it: 26.6 ms against 24.5, median of 8). A debugger's
// breakpoints in the supervisor's own code would be lost with the pages.
//
// Not `MADV_PAGEOUT`, which would also free the pages from the page cache: the first restart then read
// its code back from disk, 46 ms against 29, and the kernel allows it only to the file's owner. Not the
// read-only data mappings: one of them holds pages written before it was made read-only
// (JavaScriptCore's frozen config), and DONTNEED would throw those away.
//
// Linux only, best effort: a sandbox that refuses madvise leaves the pages where they are and nothing
// else changes. bun:ffi is loaded on the first call and kept: its own code is unmapped with the rest.

import type { Library } from "bun:ffi";
import { readFileSync, readlinkSync } from "node:fs";
import { words } from "../core/text.ts";
import { openLibc } from "./libc.ts";

/** madvise(2)'s MADV_DONTNEED: the same number on every Linux architecture Bun builds for. */
export const MADV_DONTNEED = 4;

export interface Range {
  start: bigint;
  length: bigint;
}

/** The executable mappings of `exe` in a /proc/PID/maps text: `start-end perms offset dev inode path`,
 * the path the rest of the line (it may hold spaces). */
export function codeMappings(maps: string, exe: string): Range[] {
  const ranges: Range[] = [];
  for (const line of maps.split("\n")) {
    if (!line.endsWith(` ${exe}`)) continue;
    const fields = words(line.slice(0, -exe.length));
    const [range, perms] = fields;
    const dash = range?.indexOf("-") ?? -1;
    if (fields.length !== 5 || perms !== "r-xp" || !range || dash < 1) continue;
    const start = BigInt(`0x${range.slice(0, dash)}`);
    ranges.push({ start, length: BigInt(`0x${range.slice(dash + 1)}`) - start });
  }
  return ranges;
}

/** madvise(2) as bun:ffi declares it: (addr, length, advice) → 0 or -1. */
type Madvise = { madvise: { args: ["u64", "u64", "i32"]; returns: "i32" } };
const MADVISE: Madvise = { madvise: { args: ["u64", "u64", "i32"], returns: "i32" } };
let libc: Library<Madvise> | undefined;

/** Unmaps the supervisor's own machine code (above). Never throws; false when it was not done. */
export function dropOwnCode(): boolean {
  if (process.platform !== "linux") return false;
  try {
    const ranges = codeMappings(readFileSync("/proc/self/maps", "utf8"), readlinkSync("/proc/self/exe"));
    if (ranges.length === 0) return false;
    libc ??= openLibc(MADVISE, "unmapping its code");
    const { madvise } = libc.symbols;
    return ranges.every(({ start, length }) => madvise(start, length, MADV_DONTNEED) === 0);
  } catch {
    return false;
  }
}
