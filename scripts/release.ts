// `bun scripts/release.ts [--host-only] [--out dir] [--cache dir]`: release binaries and SHA256SUMS.
//
// Each target is compiled with the same flags as scripts/build.ts, onto that target's Bun runtime
// taken from the npm registry's own package (@oven/bun-<os>-<arch>), fetched with `npm pack` (which
// checks the registry's integrity hash) into a cache under dist/, and handed to
// `--compile-executable-path`. Why not plain `--target`: that downloads into ~/.bun/install/cache on
// first use, out of sight; here the source, version and cache of every runtime are explicit, and the
// runtime version is pinned to the bun devDependency, which must also be the Bun running this script
// (the bundler and the runtime it embeds into must agree).
//
// Checks: the host binary must run and print our version; the others must be the right kind of
// executable (ELF machine and dynamic loader, or Mach-O CPU type and code signature), read from their
// headers here, with no dependency on `file`. Never `strip` a result (it removes the embedded program).
// CI runs `--host-only`: one compile, no download when node_modules already has the host's runtime.

import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { $ } from "bun";
import pkg from "../package.json" with { type: "json" };
import { BUILD_FLAGS } from "./build.ts";

export interface Target {
  name: string;
  /** `bun build --target` value: what the bundle is built for. */
  bunTarget: string;
  /** The npm package that ships this target's Bun runtime as bin/bun. */
  npmPackage: string;
  expect: ExecutableKind;
}

export type ExecutableKind =
  | { format: "elf"; machine: "x86_64" | "aarch64"; libc: "glibc" | "musl" }
  | { format: "mach-o"; cpu: "arm64" | "x86_64" };

export const TARGETS: Target[] = [
  {
    name: "linux-x64",
    bunTarget: "bun-linux-x64",
    npmPackage: "@oven/bun-linux-x64",
    expect: { format: "elf", machine: "x86_64", libc: "glibc" },
  },
  {
    name: "linux-x64-musl",
    bunTarget: "bun-linux-x64-musl",
    npmPackage: "@oven/bun-linux-x64-musl",
    expect: { format: "elf", machine: "x86_64", libc: "musl" },
  },
  {
    name: "linux-arm64",
    bunTarget: "bun-linux-arm64",
    npmPackage: "@oven/bun-linux-aarch64",
    expect: { format: "elf", machine: "aarch64", libc: "glibc" },
  },
  {
    name: "darwin-arm64",
    bunTarget: "bun-darwin-arm64",
    npmPackage: "@oven/bun-darwin-aarch64",
    expect: { format: "mach-o", cpu: "arm64" },
  },
];

const ROOT = resolve(import.meta.dir, "..");
// BUILD_FLAGS: the parent loads no bunfig.toml and no .env, and ships bytecode (see build.ts why).

export interface Built {
  target: string;
  file: string;
  bytes: number;
  sha256: string;
  check: string;
}

/** Header facts of an executable, read from its first bytes; null if it is neither ELF nor Mach-O. */
export interface Inspected {
  format: "elf" | "mach-o";
  machine: string;
  /** ELF: the dynamic loader (PT_INTERP), e.g. /lib64/ld-linux-x86-64.so.2 or /lib/ld-musl-x86_64.so.1. */
  interpreter?: string;
  /** Mach-O: has an LC_CODE_SIGNATURE load command (arm64 macOS kills unsigned binaries). */
  signed?: boolean;
}

export async function inspectExecutable(path: string): Promise<Inspected | null> {
  const file = Bun.file(path);
  const head = new DataView(await file.slice(0, 64 * 1024).arrayBuffer());
  if (head.byteLength >= 64 && head.getUint32(0) === 0x7f454c46) return inspectElf(file, head);
  if (head.byteLength >= 32 && head.getUint32(0, true) === MH_MAGIC_64) return inspectMachO(head);
  return null;
}

/** Does an inspected executable match what a target needs? Returns a reason when it does not. */
export function mismatch(found: Inspected | null, expected: ExecutableKind): string | null {
  if (!found) return "neither ELF nor Mach-O";
  if (expected.format === "elf") {
    if (found.format !== "elf") return `expected ELF, got ${found.format}`;
    if (found.machine !== expected.machine) return `expected ${expected.machine}, got ${found.machine}`;
    const musl = found.interpreter?.includes("ld-musl") ?? false;
    if (musl !== (expected.libc === "musl"))
      return `expected ${expected.libc}, loader is ${found.interpreter}`;
    return null;
  }
  if (found.format !== "mach-o") return `expected Mach-O, got ${found.format}`;
  if (found.machine !== expected.cpu) return `expected ${expected.cpu}, got ${found.machine}`;
  if (expected.cpu === "arm64" && !found.signed) return "arm64 Mach-O without a code signature";
  return null;
}

export function describeKind(found: Inspected): string {
  if (found.format === "elf") return `ELF ${found.machine}, loader ${found.interpreter ?? "none"}`;
  return `Mach-O ${found.machine}${found.signed ? ", signed" : ", unsigned"}`;
}

/** The target this machine runs, judged from the running Bun's own executable. */
export async function hostTarget(): Promise<Target> {
  const self = await inspectExecutable(process.execPath);
  const host = TARGETS.find((t) => mismatch(self, t.expect) === null);
  if (!host)
    throw new Error(`no release target matches this host (${self ? describeKind(self) : "unknown"})`);
  return host;
}

export async function release(options: { hostOnly: boolean; out: string; cache: string }): Promise<Built[]> {
  const bunVersion = pkg.devDependencies.bun;
  if (Bun.version !== bunVersion) {
    throw new Error(`run this with Bun ${bunVersion} (the bun devDependency), not ${Bun.version}`);
  }
  const host = await hostTarget();
  const targets = options.hostOnly ? [host] : TARGETS;
  // The out dir holds exactly one run's binaries, so SHA256SUMS always matches its contents.
  rmSync(options.out, { recursive: true, force: true });
  mkdirSync(options.out, { recursive: true });

  const built: Built[] = [];
  for (const target of targets) {
    const runtime = await runtimeFor(target, bunVersion, options.cache);
    const file = join(options.out, `supervisor-${pkg.version}-${target.name}`);
    const started = performance.now();
    await $`bun build ${BUILD_FLAGS} --target=${target.bunTarget} --compile-executable-path=${runtime} src/cli.ts --outfile ${file}`
      .cwd(ROOT)
      .quiet();
    const found = await inspectExecutable(file);
    const wrong = mismatch(found, target.expect);
    if (wrong) throw new Error(`${file}: ${wrong}`);
    // The runtime holds Bun's trailer marker once, as a constant; a compiled program adds its own.
    if ((await occurrences(file, BUN_TRAILER)) < (await occurrences(runtime, BUN_TRAILER)) + 1) {
      throw new Error(`${file}: no embedded program (its Bun trailer is missing)`);
    }
    let check = `${describeKind(found as Inspected)}, program embedded`;
    if (target === host) {
      const version = (await $`${file} --version`.quiet().text()).trim();
      if (version !== pkg.version) throw new Error(`${file} --version printed ${JSON.stringify(version)}`);
      check += `; runs, --version ${version}`;
    }
    const bytes = Bun.file(file).size;
    built.push({ target: target.name, file, bytes, sha256: await sha256(file), check });
    console.log(
      `${basename(file)}  ${(bytes / 1e6).toFixed(1)} MB  ${Math.round(performance.now() - started)} ms  ${check}`,
    );
  }
  // `sha256sum -c SHA256SUMS` format: "<hex>  <name>".
  await Bun.write(
    join(options.out, "SHA256SUMS"),
    built.map((b) => `${b.sha256}  ${basename(b.file)}\n`).join(""),
  );
  return built;
}

// --- internal ---

const MH_MAGIC_64 = 0xfeedfacf;
/** Ends the program that `bun build --compile` appends to the runtime (Bun 1.4.5). */
const BUN_TRAILER = "\n---- Bun! ----\n";
const ELF_MACHINES: Record<number, string> = { 62: "x86_64", 183: "aarch64" };
const MACHO_CPUS: Record<number, string> = { 16777223: "x86_64", 16777228: "arm64" };

async function inspectElf(file: Bun.BunFile, head: DataView): Promise<Inspected> {
  // 64-bit little-endian only (EI_CLASS 2, EI_DATA 1): every target here is.
  const machine = ELF_MACHINES[head.getUint16(18, true)] ?? `e_machine ${head.getUint16(18, true)}`;
  if (head.getUint8(4) !== 2 || head.getUint8(5) !== 1)
    return { format: "elf", machine: `${machine} (not 64-bit LE)` };
  const phoff = Number(head.getBigUint64(32, true));
  const phentsize = head.getUint16(54, true);
  const phnum = head.getUint16(56, true);
  const table = new DataView(await file.slice(phoff, phoff + phentsize * phnum).arrayBuffer());
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize;
    if (table.getUint32(at, true) !== 3) continue; // PT_INTERP
    const offset = Number(table.getBigUint64(at + 8, true));
    const size = Number(table.getBigUint64(at + 32, true));
    const interpreter = (await file.slice(offset, offset + size).text()).replace(/\0+$/, "");
    return { format: "elf", machine, interpreter };
  }
  return { format: "elf", machine };
}

function inspectMachO(head: DataView): Inspected {
  const cpu = head.getUint32(4, true);
  const ncmds = head.getUint32(16, true);
  let signed = false;
  // Load commands follow the 32-byte mach_header_64; they fit in the first 64 KiB read.
  for (let i = 0, at = 32; i < ncmds && at + 8 <= head.byteLength; i++) {
    if (head.getUint32(at, true) === 0x1d) signed = true; // LC_CODE_SIGNATURE
    at += head.getUint32(at + 4, true);
  }
  return { format: "mach-o", machine: MACHO_CPUS[cpu] ?? `cputype 0x${cpu.toString(16)}`, signed };
}

/**
 * bin/bun of `<npmPackage>@<version>`: the copy that the bun devDependency installed, when it is that
 * package at that version (the host's runtime; bun's postinstall moves it to node_modules/bun/bin/bun.exe),
 * else the cache, else `npm pack` into the cache.
 */
async function runtimeFor(target: Target, version: string, cacheRoot: string): Promise<string> {
  const modules = join(ROOT, "node_modules");
  const installed = [
    [join(modules, target.npmPackage, "package.json"), join(modules, target.npmPackage, "bin", "bun")],
    [join(modules, target.npmPackage, "package.json"), join(modules, "bun", "bin", "bun.exe")],
  ];
  for (const [manifest, bin] of installed as [string, string][]) {
    if (!existsSync(manifest) || !existsSync(bin)) continue;
    const { version: installedVersion } = await Bun.file(manifest).json();
    if (installedVersion === version && mismatch(await inspectExecutable(bin), target.expect) === null)
      return bin;
  }
  const dir = join(cacheRoot, `${target.npmPackage.replace("/", "+")}@${version}`);
  const bin = join(dir, "bin", "bun");
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  console.log(`fetching ${target.npmPackage}@${version} from the npm registry`);
  await $`npm pack ${`${target.npmPackage}@${version}`} --pack-destination ${dir} --silent`.quiet();
  const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"));
  if (!tarball) throw new Error(`npm pack ${target.npmPackage}@${version} left no tarball in ${dir}`);
  await $`tar -xzf ${join(dir, tarball)} -C ${dir} --strip-components=1 package/bin/bun`.quiet();
  rmSync(join(dir, tarball));
  chmodSync(bin, 0o755);
  const wrong = mismatch(await inspectExecutable(bin), target.expect);
  if (wrong) throw new Error(`${target.npmPackage}@${version} bin/bun: ${wrong}`);
  return bin;
}

async function occurrences(path: string, needle: string): Promise<number> {
  const bytes = Buffer.from(await Bun.file(path).arrayBuffer());
  let count = 0;
  for (let at = bytes.indexOf(needle); at !== -1; at = bytes.indexOf(needle, at + needle.length)) count++;
  return count;
}

async function sha256(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return hasher.digest("hex");
}

// Last, so that every constant above is initialised before it runs.
if (import.meta.main) {
  const args = process.argv.slice(2);
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    return i === -1 ? undefined : args[i + 1];
  };
  try {
    await release({
      hostOnly: args.includes("--host-only"),
      out: resolve(value("--out") ?? join(ROOT, "dist", "release")),
      cache: resolve(value("--cache") ?? join(ROOT, "dist", "bun-runtimes")),
    });
  } catch (error) {
    console.error(`release: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
