// Preflight: every check of `supervisor run`'s options that needs no process and no port, each
// failure one usage line before anything starts (shared with `supervisor check`): the directory, the
// entry file (there, readable, not binary), the TLS pair, --watch directories, --user/--group and the
// admin address.

import { accessSync, closeSync, constants, openSync, readFileSync, readSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { RunOptions } from "../config/options.ts";
import { parseAdminSpec } from "../control/admin.ts";
import { SupervisorError, usageError } from "../core/exit-codes.ts";
import { resolveIdentity } from "../os/users.ts";

/** The checked entry (absolute), the workers' uid/gid and the admin address. */
export function checkRunnable(options: RunOptions) {
  if (options.chdir) changeDirectory(options.chdir);
  const entry = checkEntry(options.entry);
  if (options.tlsCert && options.tlsKey) checkTls(options.tlsCert, options.tlsKey);
  for (const dir of options.watch) checkWatchDir(dir === "." ? dirname(entry) : dir);
  const identity = resolveIdentity(options.user, options.group);
  const admin = options.admin === undefined ? undefined : parseAdminSpec(options.admin);
  if (admin && admin.port === options.port) {
    throw usageError(`--admin port ${admin.port} is the app's port; give the admin endpoint its own`);
  }
  return { entry, identity, admin };
}

/** The entry's absolute path, or a usage error naming what is wrong with it. */
export function checkEntry(entry: string): string {
  const path = resolve(entry);
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch {
    throw usageError(`app file not found: ${entry}`);
  }
  if (!isFile) throw usageError(`app entry is not a file: ${entry}`);
  checkReadable(path, "app file", entry);
  if (holdsBinaryData(path)) {
    throw usageError(`app file is not JavaScript or TypeScript (it holds binary data): ${entry}`);
  }
  return path;
}

// --- internal ---

function changeDirectory(dir: string): void {
  try {
    process.chdir(dir);
  } catch {
    throw usageError(`--chdir: cannot change to directory ${dir}`);
  }
}

/** A NUL byte or bytes that are not UTF-8 in the file's first 8 KiB: no module source looks like that,
 * and the parser's error would echo those bytes to the operator's terminal. */
function holdsBinaryData(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(8192);
    const n = readSync(fd, head, 0, head.length, 0);
    const bytes = head.subarray(0, n);
    if (bytes.includes(0)) return true;
    // A multi-byte character cut at the 8 KiB boundary is not a reason to refuse.
    const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes.subarray(0, Math.max(0, n - 4)));
    return text.includes("\ufffd");
  } finally {
    closeSync(fd);
  }
}

/** A certificate and key the workers can serve with: parsed here (node:crypto, loaded only for TLS:
 * ~10 ms to load, ~2.5 ms to parse and match an RSA-2048 pair), so garbage is one usage line before
 * any worker starts, not a boot failure of every worker. */
function checkTls(certPath: string, keyPath: string): void {
  checkReadable(certPath, "--tls-cert");
  checkReadable(keyPath, "--tls-key");
  const { X509Certificate, createPrivateKey } = require("node:crypto") as typeof import("node:crypto");
  const firstLine = (error: unknown) =>
    (error instanceof Error ? error.message : String(error)).split("\n")[0];
  let cert: import("node:crypto").X509Certificate;
  let key: import("node:crypto").KeyObject;
  try {
    cert = new X509Certificate(readFileSync(certPath));
  } catch (error) {
    throw usageError(`--tls-cert ${certPath} is not a PEM certificate (${firstLine(error)})`);
  }
  try {
    key = createPrivateKey(readFileSync(keyPath));
  } catch (error) {
    throw usageError(`--tls-key ${keyPath} is not an unencrypted PEM private key (${firstLine(error)})`);
  }
  if (!cert.checkPrivateKey(key)) {
    throw usageError(`--tls-key ${keyPath} does not belong to the certificate in --tls-cert ${certPath}`);
  }
}

/** --watch: a directory that exists, checked before any worker starts. */
function checkWatchDir(dir: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw usageError(`--watch: directory not found: ${dir}`);
  }
  if (!isDir) throw usageError(`--watch: not a directory: ${dir}`);
}

function checkReadable(path: string, what: string, shown = path): void {
  try {
    if (!statSync(path).isFile()) throw new Error("not a file");
    accessSync(path, constants.R_OK);
  } catch (error) {
    if (error instanceof SupervisorError) throw error;
    throw usageError(`${what} is missing or not a readable file: ${shown}`);
  }
}
