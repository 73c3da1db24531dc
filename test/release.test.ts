// scripts/release.ts: the host build for real (what CI runs: one compile, no download), and the
// executable-header checks on synthetic ELF and Mach-O headers for the targets this host cannot run.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { type ExecutableKind, hostTarget, inspectExecutable, mismatch, TARGETS } from "../scripts/release.ts";
import { ROOT } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "release-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("release --host-only", () => {
  test("builds a runnable host binary and its SHA256SUMS", async () => {
    const out = join(dir, "out");
    await using proc = Bun.spawn([process.execPath, "scripts/release.ts", "--host-only", "--out", out], {
      cwd: ROOT,
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });

    const host = await hostTarget();
    const name = `supervisor-${pkg.version}-${host.name}`;
    expect(readdirSync(out).sort()).toEqual(["SHA256SUMS", name]);
    expect(stdout).toContain(`${name}  `);
    expect(stdout).toContain(`program embedded; runs, --version ${pkg.version}`);

    const hasher = new Bun.CryptoHasher("sha256");
    hasher.update(await Bun.file(join(out, name)).arrayBuffer());
    expect(readFileSync(join(out, "SHA256SUMS"), "utf8")).toBe(`${hasher.digest("hex")}  ${name}\n`);

    await using run = Bun.spawn([join(out, name), "--version"], { stdout: "pipe", env: {} });
    expect([(await run.stdout.text()).trim(), await run.exited]).toEqual([pkg.version, 0]);
  });
});

describe("executable headers", () => {
  /** A minimal 64-bit little-endian ELF header with one PT_INTERP program header. */
  function elf(machine: number, interpreter: string | null): Uint8Array {
    const bytes = new Uint8Array(256);
    const view = new DataView(bytes.buffer);
    bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
    view.setUint16(18, machine, true);
    view.setBigUint64(32, 64n, true); // e_phoff
    view.setUint16(54, 56, true); // e_phentsize
    view.setUint16(56, 1, true); // e_phnum
    view.setUint32(64, interpreter === null ? 1 : 3, true); // PT_LOAD or PT_INTERP
    if (interpreter !== null) {
      view.setBigUint64(64 + 8, 128n, true);
      view.setBigUint64(64 + 32, BigInt(interpreter.length + 1), true);
      bytes.set(new TextEncoder().encode(interpreter), 128);
    }
    return bytes;
  }

  /** A minimal mach_header_64 with one load command. */
  function machO(cputype: number, loadCommand: number): Uint8Array {
    const bytes = new Uint8Array(64);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, 0xfeedfacf, true);
    view.setUint32(4, cputype, true);
    view.setUint32(16, 1, true); // ncmds
    view.setUint32(32, loadCommand, true);
    view.setUint32(36, 16, true); // cmdsize
    return bytes;
  }

  const kind = (name: string) => (TARGETS.find((t) => t.name === name) as { expect: ExecutableKind }).expect;
  test.each([
    ["x64 glibc", "linux-x64", elf(0x3e, "/lib64/ld-linux-x86-64.so.2"), null],
    ["x64 musl", "linux-x64-musl", elf(0x3e, "/lib/ld-musl-x86_64.so.1"), null],
    ["x64 glibc as musl", "linux-x64-musl", elf(0x3e, "/lib64/ld-linux-x86-64.so.2"), "expected musl"],
    ["aarch64 glibc", "linux-arm64", elf(0xb7, "/lib/ld-linux-aarch64.so.1"), null],
    ["x64 as arm64", "linux-arm64", elf(0x3e, "/lib64/ld-linux-x86-64.so.2"), "expected aarch64, got x86_64"],
    ["static ELF", "linux-x64-musl", elf(0x3e, null), "expected musl"],
    ["Mach-O arm64, signed", "darwin-arm64", machO(0x0100000c, 0x1d), null],
    ["Mach-O arm64, unsigned", "darwin-arm64", machO(0x0100000c, 0x19), "without a code signature"],
    ["Mach-O x86_64", "darwin-arm64", machO(0x01000007, 0x1d), "expected arm64, got x86_64"],
    ["ELF for darwin", "darwin-arm64", elf(0xb7, "/lib/ld-linux-aarch64.so.1"), "expected Mach-O"],
    [
      "a shell script",
      "linux-x64",
      new TextEncoder().encode("#!/bin/sh\necho hi\n"),
      "neither ELF nor Mach-O",
    ],
  ])("%s for %s", async (name, target, bytes, problem) => {
    const path = join(dir, name.replace(/\W+/g, "-"));
    writeFileSync(path, bytes);
    const wrong = mismatch(await inspectExecutable(path), kind(target));
    if (problem === null) expect(wrong).toBeNull();
    else expect(wrong).toContain(problem);
  });

  test("the running bun is one of the targets", async () => {
    const host = await hostTarget();
    expect(mismatch(await inspectExecutable(process.execPath), host.expect)).toBeNull();
  });
});
