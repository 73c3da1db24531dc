// The orphan reaper, for real: the fixture runs as PID 1 of a new pid namespace
// (`unshare --pid --fork --mount-proc`, as in a container) and, without unshare, as a child subreaper.
// Each run has a control with reaping off, to show the zombies the reaper removes are really there.

import { describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseStat } from "../src/os/proc.ts";
import { decodeWaitStatus } from "../src/os/reaper.ts";
import { fixture, startSupervisor } from "./helpers.ts";

const FIXTURE = fixture("reaper-fixture.ts");

interface Result {
  mode: "reap" | "off";
  pid: number;
  wrong: string[];
  reaped: number;
  live: number;
  zombies: number;
  settledMs: number;
  cleanedUp: number;
}

async function runFixture(prefix: string[], mode: "reap" | "off", orphans: number): Promise<Result> {
  await using proc = Bun.spawn([...prefix, process.execPath, FIXTURE, mode, String(orphans)], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err, exit] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  expect({ exit, err }).toEqual({ exit: 0, err: "" });
  return JSON.parse(out);
}

const canUnshare = await (async () => {
  if (process.platform !== "linux" || !Bun.which("unshare")) return false;
  await using probe = Bun.spawn(["unshare", "--pid", "--fork", "--mount-proc", "true"], { stderr: "ignore" });
  return (await probe.exited) === 0;
})();

describe.skipIf(!canUnshare)("as PID 1 (unshare --pid --fork --mount-proc)", () => {
  const ns = ["unshare", "--pid", "--fork", "--mount-proc"];

  test("orphans leave no zombie after 2 s, and Bun.spawn's own exit codes stay right", async () => {
    const result = await runFixture(ns, "reap", 50);
    expect(result).toMatchObject({ mode: "reap", pid: 1, wrong: [], reaped: 50, live: 0, zombies: 0 });
    expect(result.settledMs).toBeLessThan(2_000);
  });

  test("control: without the reaper the orphans stay zombies", async () => {
    const result = await runFixture(ns, "off", 20);
    expect(result).toMatchObject({ mode: "off", pid: 1, wrong: [], reaped: 0, zombies: 20, cleanedUp: 20 });
  });
});

describe.skipIf(process.platform !== "linux")("as a child subreaper (not PID 1)", () => {
  test("orphans come to us and are reaped; tracked exit codes stay right", async () => {
    const result = await runFixture([], "reap", 20);
    expect(result.pid).not.toBe(1);
    expect(result).toMatchObject({ wrong: [], reaped: 20, live: 0, zombies: 0 });
    expect(result.settledMs).toBeLessThan(2_000);
  });

  test("control: a subreaper that does not reap collects zombies", async () => {
    const result = await runFixture([], "off", 20);
    expect(result).toMatchObject({ wrong: [], reaped: 0, zombies: 20, cleanedUp: 20 });
  });
});

describe.skipIf(process.platform !== "linux")("supervisor run --init", () => {
  test("a config hook's own children (Bun.spawn, node:child_process) are left to Bun: no ECHILD", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sv-hook-children-"));
    copyFileSync(fixture("pid-app.ts"), join(dir, "app.ts"));
    writeFileSync(
      join(dir, "supervisor.config.ts"),
      `import { execFile } from "node:child_process";
export default {
  entry: "app.ts",
  workers: 1,
  async onReady() {
    const results = [];
    for (let i = 0; i < 20; i++) {
      results.push(\`bun:\${await Bun.spawn(["true"]).exited}\`);
      results.push(await new Promise((done) => execFile("true", (error) => done(error ? \`cp:\${error.code ?? error.message}\` : "cp:0"))));
    }
    const wrong = results.filter((r) => r !== "bun:0" && r !== "cp:0");
    console.log(\`hook children: \${results.length} done, \${wrong.length} wrong \${wrong.slice(0, 3)}\`);
  },
};
`,
    );
    try {
      await using sup = startSupervisor(["run", "--init"], { cwd: dir });
      await sup.waitForOutput(/hook children: 40 done, \d+ wrong.*|onReady hook failed.*/);
      expect(sup.output()).not.toMatch(/onReady hook failed/);
      expect(sup.output()).toMatch(/hook children: 40 done, 0 wrong/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("parsing", () => {
  test.each([
    ["123 (sleep) Z 1 123 123 0 -1", { state: "Z", ppid: 1 }],
    ["77 (my app (v2) x) S 42 77 77 0 -1", { state: "S", ppid: 42 }],
    ["9 (a) b) R 3 9", { state: "R", ppid: 3 }],
  ])("stat %p", (text, expected) => {
    expect(parseStat(1, text)).toMatchObject(expected);
  });

  test("stat of garbage", () => {
    expect(parseStat(1, "garbage")).toBeUndefined();
  });

  test.each([
    [0, { code: 0, signal: null }],
    [3 << 8, { code: 3, signal: null }],
    [255 << 8, { code: 255, signal: null }],
    [9, { code: null, signal: 9 }],
    [15 | 0x80, { code: null, signal: 15 }], // core dumped
  ])("wait status %p", (raw, expected) => {
    expect(decodeWaitStatus(raw)).toEqual(expected);
  });
});
