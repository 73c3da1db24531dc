// What every cgroup reader needs (src/os/cpus.ts for -w auto, src/os/host-checks.ts for the memory
// limit): our entries in /proc/self/cgroup, the directories whose limits bind us, and a read of a
// /proc or /sys file that may not be there.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { isDigits } from "../core/text.ts";

/** One line of /proc/self/cgroup, "<id>:<controllers>:<path>"; v2's is "0::<path>". */
export interface CgroupEntry {
  /** cgroup v2 (id 0, no controllers). */
  v2: boolean;
  /** v1: the controllers of this hierarchy ("cpu", "memory", ...). */
  controllers: string[];
  path: string;
}

export function cgroupEntries(text: string): CgroupEntry[] {
  const entries: CgroupEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const first = line.indexOf(":");
    const second = line.indexOf(":", first + 1);
    if (first < 0 || second < 0 || !isDigits(line.slice(0, first))) continue;
    const controllers = line.slice(first + 1, second);
    entries.push({
      v2: line.slice(0, first) === "0" && controllers === "",
      controllers: controllers === "" ? [] : controllers.split(","),
      path: line.slice(second + 1) || "/",
    });
  }
  return entries;
}

/**
 * `<mount>/<path>` and each parent up to `<mount>`. With a cgroup namespace (Docker, Kubernetes) our
 * path is "/" and the mount's root is our cgroup. Without one, /proc/self/cgroup may name a path that
 * is not under this mount (e.g. "/docker/<id>" while the container sees its own cgroup at the root):
 * directories that do not exist are simply skipped, so the mount's root still counts.
 */
export function ancestors(mount: string, path: string): string[] {
  const parts = path.split("/").filter((p) => p !== "" && p !== "..");
  const dirs: string[] = [];
  for (let i = parts.length; i >= 0; i--) dirs.push(join(mount, ...parts.slice(0, i)));
  return dirs;
}

/** The file's text, or null when it is missing or unreadable (no such controller, not Linux). */
export function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}
