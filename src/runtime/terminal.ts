// Whether stdout or stderr is a terminal. `process.stdout.isTTY` would build Bun's Node streams for
// them on first use (node:stream, node:tty: +7.3 MB of RSS and ~5 ms; docs/DESIGN.md, "The
// supervisor's own output"), and node:tty's isatty costs as much.

import { fstatSync, statSync } from "node:fs";

/** Bun answers `process.binding("tty_wrap").isTTY` natively; should a later Bun drop it, a
 * character device other than /dev/null is taken for a terminal. */
export function isTerminal(fd: number): boolean {
  try {
    const ttyWrap = process.binding("tty_wrap") as { isTTY?: (fd: number) => boolean };
    if (typeof ttyWrap.isTTY === "function") return ttyWrap.isTTY(fd);
  } catch {
    // not in this Bun
  }
  try {
    const stat = fstatSync(fd);
    return stat.isCharacterDevice() && stat.rdev !== statSync("/dev/null").rdev;
  } catch {
    return false; // a closed descriptor
  }
}
