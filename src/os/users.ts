// --user / --group: names or numbers to uid/gid, read from /etc/passwd and /etc/group (a distroless
// image has no `id` command). Pure parsers plus one reader.

import { readFileSync } from "node:fs";
import { usageError } from "../core/exit-codes.ts";
import { isDigits } from "../core/text.ts";

export interface Identity {
  uid?: number;
  gid?: number;
  /** For the start-up line: "app (uid 1000, gid 1000)". */
  label: string;
}

/** Resolve --user/--group; a user's primary group is used when --group is not given. */
export function resolveIdentity(
  user: string | undefined,
  group: string | undefined,
  files: { passwd?: string; group?: string } = {},
): Identity | undefined {
  if (user === undefined && group === undefined) return undefined;
  if (process.getuid?.() !== 0) {
    throw usageError("--user/--group need the supervisor to start as root (it drops privileges for workers)");
  }
  const passwd = user === undefined ? [] : parseColonFile(read(files.passwd ?? "/etc/passwd"));
  const groups = group === undefined ? [] : parseColonFile(read(files.group ?? "/etc/group"));
  const identity: Identity = { label: "" };
  if (user !== undefined) {
    const entry = lookup(passwd, user);
    if (!entry) throw usageError(`--user: no such user '${user}'`);
    identity.uid = Number(entry[2]);
    identity.gid = Number(entry[3]);
  }
  if (group !== undefined) {
    const entry = lookup(groups, group);
    if (!entry) throw usageError(`--group: no such group '${group}'`);
    identity.gid = Number(entry[2]);
  }
  identity.label = `${user ?? "root"} (uid ${identity.uid ?? 0}, gid ${identity.gid ?? 0})`;
  return identity;
}

/** Lines of `name:x:id:...` files, split on ':'. */
export function parseColonFile(text: string): string[][] {
  return text
    .split("\n")
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => line.split(":"));
}

// --- internal ---

/** By name, or by number even when no entry names it (a uid without a passwd line is valid). */
function lookup(entries: string[][], nameOrId: string): string[] | undefined {
  const byName = entries.find((e) => e[0] === nameOrId);
  if (byName) return byName;
  if (!isDigits(nameOrId)) return undefined;
  return entries.find((e) => e[2] === nameOrId) ?? [nameOrId, "x", nameOrId, nameOrId];
}

function read(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
