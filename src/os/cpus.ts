// How many CPUs this process may really use, for `-w auto`. The host's CPU count over-provisions
// containers (benoitc/gunicorn#2028, #2877): a pod limited to 1 CPU on a 64-core node would start 64
// workers that then fight over one CPU's worth of time. Three limits apply and the smallest wins:
//   - the CPU quota of our cgroup (v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`),
//     which neither `os.availableParallelism()` nor `navigator.hardwareConcurrency` reads;
//   - the affinity mask (`taskset`, cpuset cgroups, Docker's `--cpuset-cpus`), read from
//     /proc/self/status. `os.availableParallelism()` follows the mask and, in Bun 1.4.5, a cgroup v1
//     quota too (measured: quota 1.5 CPUs -> 1), so it cannot tell which limit bound; we read each
//     limit ourselves and use it only where /proc is missing (macOS);
//   - the number of CPUs.
// A fractional quota is rounded down, with a minimum of 1 (what uber-go/automaxprocs does): 1.5 CPUs
// gives 1 worker, never 2 workers sharing 1.5 CPUs and throttled every period. Rounding up would
// over-provision, which is the very thing this module exists to avoid.

import { availableParallelism, cpus } from "node:os";
import { join } from "node:path";
import { isDigits, lineAfter, words } from "../core/text.ts";
import { ancestors, cgroupEntries, readOrNull } from "./cgroup.ts";

export interface AvailableCpus {
  /** Whole CPUs, at least 1. */
  count: number;
  /** How the number was chosen, for the start-up line: "cgroup quota 1.5 CPUs", "affinity mask (1 of 2 CPUs)", "2 CPUs". */
  reason: string;
}

export interface CpuOptions {
  /** Where the cgroup filesystem is mounted; tests point it at a temp dir. Default /sys/fs/cgroup. */
  cgroupRoot?: string;
  /** Contents of /proc/self/cgroup (our cgroup's path in each hierarchy); read from /proc when absent. */
  procSelfCgroup?: string;
  /** CPUs in our affinity mask; default from /proc/self/status, else `os.availableParallelism()`. */
  affinity?: number;
  /** CPUs the machine has; default `os.cpus().length`. */
  cpuCount?: number;
}

export function availableCpus(options: CpuOptions = {}): AvailableCpus {
  const root = options.cgroupRoot ?? "/sys/fs/cgroup";
  const selfCgroup = options.procSelfCgroup ?? readOrNull("/proc/self/cgroup") ?? "";
  const cpuCount = Math.max(1, options.cpuCount ?? (cpus().length || 1));
  const affinity = Math.max(1, Math.min(cpuCount, options.affinity ?? affinityCpus()));
  const quota = cgroupQuota(root, parseProcSelfCgroup(selfCgroup));
  return chooseCpus({ quota, affinity, cpuCount });
}

/** The decision alone: the smallest limit wins; the reason names the limit that bound. */
export function chooseCpus(limits: {
  quota: number | null;
  affinity: number;
  cpuCount: number;
}): AvailableCpus {
  const { quota, affinity, cpuCount } = limits;
  const fromQuota = quota === null ? Number.POSITIVE_INFINITY : Math.max(1, Math.floor(quota));
  if (fromQuota < affinity)
    return { count: fromQuota, reason: `cgroup quota ${formatCpus(quota as number)}` };
  if (affinity < cpuCount)
    return { count: affinity, reason: `affinity mask (${affinity} of ${cpuCount} CPUs)` };
  return { count: cpuCount, reason: `${cpuCount} CPU${cpuCount === 1 ? "" : "s"}` };
}

/** cgroup v2 `cpu.max`: "max 100000" (no limit) or "<quota> <period>" in µs. Returns CPUs, or null for no limit. */
export function parseCpuMax(text: string): number | null {
  const [quota, period = "100000"] = words(text);
  if (quota === undefined || quota === "max") return null;
  return ratio(Number(quota), Number(period));
}

/** cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us`: quota -1 means no limit. Returns CPUs or null. */
export function parseCfs(quotaText: string, periodText: string): number | null {
  return ratio(Number(quotaText.trim()), Number(periodText.trim()));
}

export interface SelfCgroup {
  /** Our path in the cgroup v2 hierarchy ("0::/path"), if any. */
  v2: string | null;
  /** Our path in the v1 hierarchy that has the `cpu` controller, if any. */
  v1Cpu: string | null;
}

/** /proc/self/cgroup lines are "<id>:<controllers>:<path>"; v2's is "0::<path>". */
export function parseProcSelfCgroup(text: string): SelfCgroup {
  const result: SelfCgroup = { v2: null, v1Cpu: null };
  for (const { v2, controllers, path } of cgroupEntries(text)) {
    if (v2) result.v2 = path;
    else if (controllers.includes("cpu")) result.v1Cpu = path;
  }
  return result;
}

/**
 * The tightest CPU quota on our cgroup and its ancestors (a parent's limit binds its children too),
 * from cgroup v2 and any v1 `cpu` hierarchy; null when nothing limits us or no file is readable.
 */
export function cgroupQuota(root: string, self: SelfCgroup): number | null {
  const found: number[] = [];
  for (const dir of ancestors(root, self.v2 ?? "/")) {
    const text = readOrNull(join(dir, "cpu.max"));
    const cpus = text === null ? null : parseCpuMax(text);
    if (cpus !== null) found.push(cpus);
  }
  // v1 mounts the cpu controller on its own or co-mounted with cpuacct, under either name order.
  for (const mount of ["cpu", "cpu,cpuacct", "cpuacct,cpu"]) {
    for (const dir of ancestors(join(root, mount), self.v1Cpu ?? "/")) {
      const quota = readOrNull(join(dir, "cpu.cfs_quota_us"));
      const period = readOrNull(join(dir, "cpu.cfs_period_us"));
      const cpus = quota === null || period === null ? null : parseCfs(quota, period);
      if (cpus !== null) found.push(cpus);
    }
  }
  return found.length === 0 ? null : Math.min(...found);
}

/** A kernel CPU list such as "0-3,8,10-11" (Cpus_allowed_list, cpuset.cpus) -> how many CPUs; null if unparsable. */
export function parseCpuList(text: string): number | null {
  let count = 0;
  for (const part of text.trim().split(",")) {
    const [from = "", to, more] = part.trim().split("-");
    if (!isDigits(from) || (to !== undefined && !isDigits(to)) || more !== undefined) return null;
    const first = Number(from);
    const last = to === undefined ? first : Number(to);
    if (last < first) return null;
    count += last - first + 1;
  }
  return count > 0 ? count : null;
}

// --- internal ---

function affinityCpus(): number {
  const status = readOrNull("/proc/self/status");
  const list = lineAfter(status ?? "", "Cpus_allowed_list:");
  return (list ? parseCpuList(list) : null) ?? availableParallelism();
}

function ratio(quota: number, period: number): number | null {
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return null;
  return quota / period;
}

function formatCpus(cpus: number): string {
  const rounded = Math.round(cpus * 100) / 100;
  return `${rounded} CPU${rounded === 1 ? "" : "s"}`;
}
