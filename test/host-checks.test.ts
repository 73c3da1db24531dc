// `supervisor check`'s host report and the one start-up warning line, against this machine's real
// /proc/sys values; as root, a private network namespace (`unshare -n`) flips tcp_migrate_req and a
// real cgroup v1 memory limit is set, without touching the machine's own settings.

import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { canMakeV1Cgroup, fixture, ROOT, runToExit, startSupervisor, waitFor } from "./helpers.ts";

const cli = [process.execPath, join(ROOT, "src", "cli.ts")];
const isRoot = process.getuid?.() === 0;
const canUnshareNet = isRoot && Bun.spawnSync(["unshare", "-n", "true"]).exitCode === 0;

/** `supervisor <args>` under `sh -c '<setup> && exec ...'` (a namespace, a limit, a cgroup). */
async function underShell(setup: string, args: string[], wrapper: string[] = []) {
  return runToExit([...wrapper, "sh", "-c", `${setup} && exec "$@"`, "sh", ...cli, ...args], { raw: true });
}

describe("supervisor check: host settings", () => {
  test("reports this machine's own values, one line each", async () => {
    const { code, stdout } = await runToExit(["check", fixture("pid-app.ts"), "-w", "2"]);
    expect(code).toBe(0);
    const migrate = readFileSync("/proc/sys/net/ipv4/tcp_migrate_req", "utf8").trim();
    const somaxconn = readFileSync("/proc/sys/net/core/somaxconn", "utf8").trim();
    expect(stdout).toContain("host settings for 2 workers:");
    expect(stdout).toMatch(new RegExp(`^(ok  |warn) net\\.ipv4\\.tcp_migrate_req=${migrate}: `, "m"));
    expect(stdout).toMatch(new RegExp(`^(ok  |warn) net\\.core\\.somaxconn=${somaxconn}: `, "m"));
    expect(stdout).toMatch(/^(ok {2}|warn) open files \(hard limit\)=\S+: /m);
    expect(stdout).toMatch(/^(ok {2}|warn) cgroup memory limit=\S+( MB)?: 2 workers need ~120 MB/m);
  });

  test("a low open-files limit: warned, with the fix; check still exits 0", async () => {
    const { code, stdout } = await underShell("ulimit -n 1024", ["check", fixture("pid-app.ts"), "-w", "2"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^warn open files \(hard limit\)=1024: each worker can hold at most ~992 connections .*; fix: LimitNOFILE=65536/m,
    );
  });
});

describe.skipIf(!canUnshareNet)("tcp_migrate_req in a private network namespace (root)", () => {
  const inNetns = (value: number) => `ip link set lo up && sysctl -qw net.ipv4.tcp_migrate_req=${value}`;
  /** `supervisor run` of one worker in a private network namespace with tcp_migrate_req = value. */
  const runInNetns = (value: number) =>
    startSupervisor(
      [
        "unshare",
        "-n",
        "sh",
        "-c",
        `${inNetns(value)} && exec "$@"`,
        "sh",
        ...cli,
        "run",
        fixture("pid-app.ts"),
        "-w",
        "1",
      ],
      { raw: true },
    );

  test("0: check warns with the fix, and run prints one host warning line", async () => {
    const checked = await underShell(inNetns(0), ["check", fixture("pid-app.ts")], ["unshare", "-n"]);
    expect(checked.stdout).toMatch(
      /^warn net\.ipv4\.tcp_migrate_req=0: connections queued on a stopping worker are reset .*; fix: sysctl -w net\.ipv4\.tcp_migrate_req=1/m,
    );
    await using sup = runInNetns(0);
    const line = await sup.waitForOutput(
      /^.*host: net\.ipv4\.tcp_migrate_req=0: .*\(see supervisor check\)$/m,
    );
    expect(line).toContain("warn");
    expect(sup.output().match(/host: /g)).toHaveLength(1);
  });

  test("somaxconn (also per namespace) below Bun's backlog of 512: warned, with the fix", async () => {
    const checked = await underShell(
      "ip link set lo up && sysctl -qw net.core.somaxconn=128",
      ["check", fixture("pid-app.ts")],
      ["unshare", "-n"],
    );
    expect(checked.stdout).toMatch(
      /^warn net\.core\.somaxconn=128: each worker's accept queue is cut from 512 to 128.*; fix: sysctl -w net\.core\.somaxconn=4096$/m,
    );
  });

  test("1: check says ok, and run prints no host line", async () => {
    const checked = await underShell(inNetns(1), ["check", fixture("pid-app.ts")], ["unshare", "-n"]);
    expect(checked.stdout).toMatch(/^ok {3}net\.ipv4\.tcp_migrate_req=1: /m);
    await using sup = runInNetns(1);
    await sup.waitForOutput(/ready: 1 worker/);
    process.kill(sup.pid, "SIGTERM");
    expect(await sup.exited).toBe(0);
    expect(sup.output()).not.toContain("host: ");
  });
});

// A real cgroup v1 memory limit: needs root and a writable memory controller (skipped elsewhere).
const V1_MEMORY = "/sys/fs/cgroup/memory";
const canMakeMemoryCgroup = canMakeV1Cgroup(V1_MEMORY, "memory.limit_in_bytes");

describe.skipIf(!canMakeMemoryCgroup)("cgroup memory limit, for real (root, cgroup v1)", () => {
  test("100 MB for -w 4: warned (4 workers need ~192 MB), the fix says -w 1", async () => {
    const group = join(V1_MEMORY, `supervisor-test-${process.pid}`);
    mkdirSync(group);
    try {
      writeFileSync(join(group, "memory.limit_in_bytes"), String(100 * 2 ** 20));
      const { code, stdout } = await underShell(`echo $$ > ${join(group, "cgroup.procs")}`, [
        "check",
        fixture("pid-app.ts"),
        "-w",
        "4",
      ]);
      expect(code).toBe(0);
      expect(stdout).toMatch(
        /^warn cgroup memory limit=100 MB: 4 workers need ~192 MB .*; fix: -w 1, or a memory limit of at least 192 MB/m,
      );
    } finally {
      await waitFor(() => {
        rmdirSync(group);
        return true;
      }, `removal of ${group}`);
    }
  });
});
