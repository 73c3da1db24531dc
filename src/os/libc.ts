// libc through bun:ffi, for the few calls that neither Node's API nor Bun's offers: waitpid(2) and
// prctl(2) for the orphan reaper (src/os/reaper.ts), socket(2)/sendto(2) for systemd's notify
// protocol (src/runtime/notify.ts). One loader for both: glibc's soname first; musl (Alpine, Bun's
// linux-x64-musl build) names its libc after the arch. bun:ffi is required on first use, so a
// supervisor that needs neither never loads it. (Workers load no bun:ffi at all.)

import type { FFIFunction, Library } from "bun:ffi";

/** `symbols` of the system's libc; throws naming every library tried and why it failed. */
export function openLibc<Symbols extends Record<string, FFIFunction>>(
  symbols: Symbols,
  purpose: string,
): Library<Symbols> {
  const { dlopen } = require("bun:ffi") as typeof import("bun:ffi");
  const arch = process.arch === "arm64" ? "aarch64" : "x86_64";
  const errors: string[] = [];
  for (const name of ["libc.so.6", `libc.musl-${arch}.so.1`, `/lib/ld-musl-${arch}.so.1`]) {
    try {
      return dlopen(name, symbols);
    } catch (error) {
      errors.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  throw new Error(`cannot load libc for ${purpose} (${errors.join("; ")})`);
}
