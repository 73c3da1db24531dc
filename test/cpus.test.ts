// `-w auto`: the CPUs this process may really use. Parsing and the decision are table-driven; the
// cgroup files are read from temp dirs laid out like /sys/fs/cgroup; taskset and a real cgroup v1
// quota are checked in subprocesses where the machine allows.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  availableCpus,
  cgroupQuota,
  chooseCpus,
  parseCfs,
  parseCpuList,
  parseCpuMax,
  parseProcSelfCgroup,
} from "../src/os/cpus.ts";
import { canMakeV1Cgroup, ROOT, waitFor } from "./helpers.ts";

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** A fake cgroup mount: { "cpu.max": "...", "cpu/cpu.cfs_quota_us": "..." } relative to the root. */
function cgroupTree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "cgroup-"));
  temps.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe("parsing", () => {
  test.each([
    ["max 100000\n", null],
    ["max", null],
    ["100000 100000\n", 1],
    ["150000 100000\n", 1.5],
    ["50000 100000", 0.5],
    ["200000", 2],
    ["400000 200000", 2],
    ["0 100000", null],
    ["garbage", null],
    ["", null],
  ])("cpu.max %p -> %p", (text, cpus) => {
    expect(parseCpuMax(text)).toBe(cpus);
  });

  test.each([
    ["-1\n", "100000\n", null],
    ["100000\n", "100000\n", 1],
    ["150000", "100000", 1.5],
    ["25000", "50000", 0.5],
    ["100000", "0", null],
    ["", "100000", null],
  ])("cfs quota %p period %p -> %p", (quota, period, cpus) => {
    expect(parseCfs(quota, period)).toBe(cpus);
  });

  test.each([
    ["0::/\n", { v2: "/", v1Cpu: null }],
    ["0::/kubepods/pod1/abc\n", { v2: "/kubepods/pod1/abc", v1Cpu: null }],
    ["4:memory:/x\n2:cpuacct:/\n1:cpu:/probe\n0::/\n", { v2: "/", v1Cpu: "/probe" }],
    ["3:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n", { v2: null, v1Cpu: "/docker/abc" }],
    ["2:cpuacct,cpu:/a\n", { v2: null, v1Cpu: "/a" }],
    ["", { v2: null, v1Cpu: null }],
  ])("/proc/self/cgroup %p", (text, expected) => {
    expect(parseProcSelfCgroup(text)).toEqual(expected);
  });

  test.each([
    ["0-1\n", 2],
    ["0", 1],
    ["0-3,8,10-11", 7],
    ["5", 1],
    ["", null],
    ["3-1", null],
    ["x", null],
  ])("cpu list %p -> %p", (text, count) => {
    expect(parseCpuList(text)).toBe(count);
  });
});

describe("choosing", () => {
  test.each([
    [{ quota: null, affinity: 8, cpuCount: 8 }, 8, "8 CPUs"],
    [{ quota: null, affinity: 1, cpuCount: 1 }, 1, "1 CPU"],
    [{ quota: null, affinity: 2, cpuCount: 8 }, 2, "affinity mask (2 of 8 CPUs)"],
    [{ quota: 1, affinity: 8, cpuCount: 8 }, 1, "cgroup quota 1 CPU"],
    // Round down, never over-provision: 1.5 CPUs of quota is 1 worker, not 2 throttled ones.
    [{ quota: 1.5, affinity: 8, cpuCount: 8 }, 1, "cgroup quota 1.5 CPUs"],
    [{ quota: 2.99, affinity: 8, cpuCount: 8 }, 2, "cgroup quota 2.99 CPUs"],
    // At least 1, even with a quota below one CPU.
    [{ quota: 0.25, affinity: 8, cpuCount: 8 }, 1, "cgroup quota 0.25 CPUs"],
    // The smallest limit wins, whichever it is.
    [{ quota: 4, affinity: 2, cpuCount: 8 }, 2, "affinity mask (2 of 8 CPUs)"],
    [{ quota: 16, affinity: 8, cpuCount: 8 }, 8, "8 CPUs"],
    [{ quota: 8, affinity: 8, cpuCount: 8 }, 8, "8 CPUs"],
  ])("%p -> %p (%p)", (limits, count, reason) => {
    expect(chooseCpus(limits)).toEqual({ count, reason });
  });
});

describe("cgroup files", () => {
  const none = { v2: null, v1Cpu: null };
  test.each([
    ["v2 no limit", { "cpu.max": "max 100000\n" }, none, null],
    ["v2 1.5 CPUs", { "cpu.max": "150000 100000\n" }, none, 1.5],
    ["v1 no limit", { "cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n" }, none, null],
    ["v1 2 CPUs", { "cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n" }, none, 2],
    [
      "v1 cpu,cpuacct co-mounted",
      { "cpu,cpuacct/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n" },
      none,
      0.5,
    ],
    ["nothing mounted", {}, none, null],
    [
      "v2: a parent's tighter quota binds its child",
      { "cpu.max": "max 100000", "kube/cpu.max": "100000 100000", "kube/pod/cpu.max": "300000 100000" },
      { v2: "/kube/pod", v1Cpu: null },
      1,
    ],
    [
      "v2: our path missing under this mount (no cgroup namespace): the mount's root counts",
      { "cpu.max": "200000 100000" },
      { v2: "/docker/abc", v1Cpu: null },
      2,
    ],
    [
      "v1: our own cgroup's quota",
      {
        "cpu/cpu.cfs_quota_us": "-1",
        "cpu/cpu.cfs_period_us": "100000",
        "cpu/job/cpu.cfs_quota_us": "100000",
        "cpu/job/cpu.cfs_period_us": "100000",
      },
      { v2: "/", v1Cpu: "/job" },
      1,
    ],
    [
      "v1 and v2 both present: the smaller",
      { "cpu.max": "300000 100000", "cpu/cpu.cfs_quota_us": "150000", "cpu/cpu.cfs_period_us": "100000" },
      none,
      1.5,
    ],
  ])("%s", (_name, files, self, quota) => {
    expect(cgroupQuota(cgroupTree(files), self)).toBe(quota);
  });

  test("availableCpus reads the quota from cgroupRoot and says so", () => {
    const root = cgroupTree({ "cpu.max": "100000 100000\n" });
    expect(availableCpus({ cgroupRoot: root, procSelfCgroup: "0::/\n", affinity: 8, cpuCount: 8 })).toEqual({
      count: 1,
      reason: "cgroup quota 1 CPU",
    });
    const unlimited = cgroupTree({ "cpu.max": "max 100000\n" });
    expect(
      availableCpus({ cgroupRoot: unlimited, procSelfCgroup: "0::/\n", affinity: 8, cpuCount: 8 }),
    ).toEqual({
      count: 8,
      reason: "8 CPUs",
    });
  });

  test("defaults: this machine, never more than its CPUs and at least 1", () => {
    const { count, reason } = availableCpus();
    expect(count).toBeGreaterThanOrEqual(1);
    expect(count).toBeLessThanOrEqual(availableParallelism());
    expect(count).toBeLessThanOrEqual(cpus().length);
    expect(reason).toBeString();
  });
});

/** Run availableCpus() in a fresh bun process, optionally under a wrapper command. */
async function cpusInSubprocess(prefix: string[]): Promise<{ count: number; reason: string }> {
  const code = `const { availableCpus } = await import(${JSON.stringify(join(ROOT, "src", "os", "cpus.ts"))}); console.log(JSON.stringify(availableCpus()));`;
  await using proc = Bun.spawn([...prefix, process.execPath, "-e", code], { stdout: "pipe", stderr: "pipe" });
  const [out, err, exit] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  expect({ exit, err }).toEqual({ exit: 0, err: "" });
  return JSON.parse(out);
}

const taskset = Bun.which("taskset");
describe.skipIf(!taskset || cpus().length < 2)("affinity mask, for real", () => {
  test("taskset -c 0 gives 1 worker, named as the affinity mask", async () => {
    const result = await cpusInSubprocess([taskset as string, "-c", "0"]);
    // A quota of 1 CPU or less would also give 1; on this kind of machine there is none.
    expect(result.count).toBe(1);
    if (cgroupQuota("/sys/fs/cgroup", { v2: "/", v1Cpu: "/" }) === null) {
      expect(result.reason).toBe(`affinity mask (1 of ${cpus().length} CPUs)`);
    }
  });
});

// A real cgroup v1 with a 1-CPU quota: needs root and a writable cpu controller (this project's
// machines have both; most CI runners do not, and then it is skipped).
const V1_CPU = "/sys/fs/cgroup/cpu";
const canMakeCpuCgroup = canMakeV1Cgroup(V1_CPU, "cpu.cfs_quota_us");

describe.skipIf(!canMakeCpuCgroup || cpus().length < 2)("cgroup v1 quota, for real", () => {
  test("a process in a cgroup with cpu.cfs_quota_us = 1 CPU gets 1", async () => {
    const group = join(V1_CPU, `supervisor-test-${process.pid}`);
    mkdirSync(group);
    try {
      writeFileSync(join(group, "cpu.cfs_period_us"), "100000");
      writeFileSync(join(group, "cpu.cfs_quota_us"), "100000");
      // The shell moves itself into the cgroup, then becomes bun (which stays in it).
      const result = await cpusInSubprocess([
        "sh",
        "-c",
        `echo $$ > ${join(group, "cgroup.procs")} && exec "$@"`,
        "sh",
      ]);
      expect(result).toEqual({ count: 1, reason: "cgroup quota 1 CPU" });
    } finally {
      // rmdir succeeds once the cgroup is empty: the subprocess has exited, the kernel may lag a moment.
      await waitFor(() => {
        rmdirSync(group);
        return true;
      }, `removal of ${group}`);
    }
  });
});
