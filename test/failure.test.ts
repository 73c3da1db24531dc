// The supervisor fails only in ways it decided (issue 11): a throw in the loop or anywhere else ends in
// one error line through the logger, no worker left, pidfile and control socket removed, exit 1; and
// signals are handled from the first moment (config loading, --pre-start), as tini does.
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { processTable } from "../src/os/proc.ts";
import { fixture, get, isAlive, type Running, startSupervisor, waitFor } from "./helpers.ts";

const READY = /ready: \d+ workers? listening/;

/** A directory with the pid app as app.ts (and the given config file), the pidfile and socket paths. */
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function project(config?: string) {
  const dir = mkdtempSync(join(tmpdir(), "sv-fail-"));
  dirs.push(dir);
  copyFileSync(fixture("pid-app.ts"), join(dir, "app.ts"));
  if (config !== undefined) writeFileSync(join(dir, "supervisor.config.ts"), config);
  return { dir, pidfile: join(dir, "supervisor.pid"), socket: join(dir, "control.sock") };
}

/** Every line but the app's own (the fixture's "spin started") is a JSON log line; returns the errors. */
function jsonErrors(output: string): { msg: string }[] {
  const lines = output
    .trim()
    .split("\n")
    .filter((line) => !/^(spin|slow request) started pid \d+$/.test(line));
  const parsed = lines.map((line) => {
    try {
      return JSON.parse(line) as { level: string; msg: string };
    } catch {
      throw new Error(`not a JSON line: ${line}\nwhole output:\n${output}`);
    }
  });
  return parsed.filter((l) => l.level === "error");
}

/** The worker pids of the "ready" line. */
const readyPids = (output: string) =>
  (/\(pids ([\d, ]+)\)/.exec(output)?.[1] ?? "").split(", ").map(Number).filter(Boolean);

/** After the run: exit 1, one JSON error line matching `pattern`, no worker, no pidfile, no socket. */
async function expectDecidedFailure(
  sup: Running,
  workers: number[],
  pattern: RegExp,
  p: ReturnType<typeof project>,
) {
  expect(await sup.exited).toBe(1);
  const errors = jsonErrors(sup.output());
  expect(errors).toHaveLength(1);
  expect(errors[0]?.msg).toMatch(pattern);
  expect(sup.output()).not.toMatch(/^\s+at /m);
  expect(workers.length).toBeGreaterThan(0);
  for (const pid of workers) expect(isAlive(pid)).toBe(false);
  expect(existsSync(p.pidfile)).toBe(false);
  expect(existsSync(p.socket)).toBe(false);
}

describe("failure protocol", () => {
  test("a throw in the loop: one JSON error line, every worker stopped (a hung one SIGKILLed), pidfile and socket gone, exit 1", async () => {
    const p = project();
    await using sup = startSupervisor(
      ["run", "app.ts", "-w", "2", "--log-format", "json", "--pidfile", p.pidfile, "--control", p.socket],
      // Test-only fault injection (src/runtime/loop.ts): the loop throws at the first signal event.
      { cwd: p.dir, env: { SUPERVISOR_TEST_FAULT: "signal" } },
    );
    await sup.waitForOutput(READY);
    const workers = readyPids(sup.output());
    expect(workers).toHaveLength(2);
    // One worker's event loop is stuck: it cannot act on QUIT, only SIGKILL ends it.
    void get(sup.port, "/spin", 30_000).catch(() => {});
    await sup.waitForOutput(/spin started/);
    process.kill(sup.pid, "SIGUSR2");
    await expectDecidedFailure(sup, workers, /^internal error: injected fault at a 'signal' event/, p);
  });

  test("a throw that escapes a config hook (from a timer it left): the same protocol", async () => {
    const p = project(
      `export default { entry: "app.ts", workers: 2, onReady() { setTimeout(() => { throw new Error("boom from a hook's timer"); }, 0); } };\n`,
    );
    await using sup = startSupervisor(
      ["run", "--log-format", "json", "--pidfile", p.pidfile, "--control", p.socket],
      { cwd: p.dir },
    );
    await sup.waitForOutput(READY);
    const workers = readyPids(sup.output());
    await expectDecidedFailure(
      sup,
      workers,
      /^internal error: boom from a hook's timer; stopping every worker/,
      p,
    );
  });

  test("a hook that throws itself is logged (one JSON line) and the supervisor keeps serving", async () => {
    const p = project(
      `export default { entry: "app.ts", workers: 1, onReady() { throw new Error("hook says no"); } };\n`,
    );
    await using sup = startSupervisor(["run", "--log-format", "json", "--control", p.socket], { cwd: p.dir });
    await sup.waitForOutput(/onReady hook failed: Error: hook says no/);
    expect((await get(sup.port)).status).toBe(200);
    expect(jsonErrors(sup.output())).toHaveLength(1);
  });

  test("a throw escaping while the config file loads: one JSON error line, exit 1", async () => {
    const p = project(
      `setTimeout(() => { throw new Error("boom while loading"); }, 0);\nawait Bun.sleep(200);\nexport default { entry: "app.ts" };\n`,
    );
    await using sup = startSupervisor(["run", "--log-format", "json", "--pidfile", p.pidfile], {
      cwd: p.dir,
    });
    expect(await sup.exited).toBe(1);
    expect(jsonErrors(sup.output()).map((e) => e.msg)).toEqual(["internal error: boom while loading"]);
    expect(existsSync(p.pidfile)).toBe(false);
  });

  test("--log-format json: a start-up error is a JSON line too", async () => {
    const p = project();
    await using sup = startSupervisor(["run", "missing.ts", "--log-format", "json"], { cwd: p.dir });
    expect(await sup.exited).toBe(2);
    const errors = jsonErrors(sup.stderr());
    expect(errors.map((e) => e.msg)).toEqual(["app file not found: missing.ts"]);
  });
});

describe("signals from the first moment", () => {
  /** A --pre-start that records its process group and waits for `go` (no timing in the test). */
  const waitingPreStart = (dir: string) =>
    `echo $$ > ${join(dir, "pre.pgid")}; while [ ! -e ${join(dir, "go")} ]; do sleep 0.05; done`;
  /** The pre-start's process group, once it has written it whole. */
  const preStartGroup = (dir: string) => {
    const text = existsSync(join(dir, "pre.pgid")) ? readFileSync(join(dir, "pre.pgid"), "utf8") : "";
    return /^\d+\n$/.test(text) ? Number(text) : undefined;
  };
  /** A live (not zombie) process in the group: kill(-pgid, 0) would count zombies nobody reaped yet. */
  const groupAlive = (pgid: number) =>
    processTable().some((stat) => stat.pgrp === pgid && stat.state !== "Z");

  test("TERM during --pre-start stops it, starts no worker, removes the pidfile and socket, exit 0", async () => {
    const p = project();
    await using sup = startSupervisor(
      ["run", "app.ts", "--pidfile", p.pidfile, "--control", p.socket, "--pre-start", waitingPreStart(p.dir)],
      { cwd: p.dir },
    );
    const pgid = await waitFor(() => preStartGroup(p.dir), "pre-start to run");
    expect(groupAlive(pgid)).toBe(true);
    expect(existsSync(p.pidfile)).toBe(true);
    process.kill(sup.pid, "SIGTERM");
    expect(await sup.exited).toBe(0);
    expect(sup.output()).toMatch(/SIGTERM received during start-up: starting no worker/);
    expect(sup.output()).not.toMatch(/starting \d+ worker/);
    expect(existsSync(p.pidfile)).toBe(false);
    expect(existsSync(p.socket)).toBe(false);
    await waitFor(() => !groupAlive(pgid), "the pre-start command and its children to be gone");
  });

  test("HUP during --pre-start is logged and ignored; TTIN is kept for the loop", async () => {
    const p = project();
    await using sup = startSupervisor(
      ["run", "app.ts", "-w", "1", "--control", p.socket, "--pre-start", waitingPreStart(p.dir)],
      {
        cwd: p.dir,
      },
    );
    await waitFor(() => preStartGroup(p.dir), "pre-start to run");
    process.kill(sup.pid, "SIGHUP");
    await sup.waitForOutput(/SIGHUP received during start-up: nothing to reload yet; ignored/);
    process.kill(sup.pid, "SIGTTIN");
    await sup.waitForOutput(/SIGTTIN received during start-up: applied when the workers start/);
    await Bun.write(join(p.dir, "go"), "");
    await sup.waitForOutput(READY);
    await waitFor(() => sup.workers().length === 2, "the queued TTIN to add a worker");
    expect(sup.output()).not.toMatch(/reloading/);
  });

  test("a throw during --pre-start (a timer the config file left): one JSON error line, pre-start stopped, pidfile gone, exit 1", async () => {
    const p = project(
      `import { existsSync } from "node:fs";
const poll = setInterval(() => {
  if (!existsSync("throw")) return;
  clearInterval(poll);
  throw new Error("late boom");
}, 20);
export default { entry: "app.ts" };
`,
    );
    await using sup = startSupervisor(
      ["run", "--log-format", "json", "--pidfile", p.pidfile, "--pre-start", waitingPreStart(p.dir)],
      { cwd: p.dir },
    );
    const pgid = await waitFor(() => preStartGroup(p.dir), "pre-start to run");
    expect(groupAlive(pgid)).toBe(true);
    await Bun.write(join(p.dir, "throw"), "");
    expect(await sup.exited).toBe(1);
    expect(jsonErrors(sup.output()).map((e) => e.msg)).toEqual(["internal error: late boom; exiting"]);
    expect(sup.output()).not.toMatch(/starting \d+ worker/);
    expect(existsSync(p.pidfile)).toBe(false);
    await waitFor(() => !groupAlive(pgid), "the pre-start command to be gone");
  });

  test("TERM while the config file is still loading: exit 0 at once, nothing written", async () => {
    const p = project(
      `import { existsSync, writeFileSync } from "node:fs";
writeFileSync("loading", "");
while (!existsSync("go")) await Bun.sleep(20);
export default { entry: "app.ts" };
`,
    );
    await using sup = startSupervisor(["run", "--pidfile", p.pidfile], { cwd: p.dir });
    await waitFor(() => existsSync(join(p.dir, "loading")), "the config file to be loading");
    process.kill(sup.pid, "SIGTERM");
    expect(await sup.exited).toBe(0);
    expect(existsSync(p.pidfile)).toBe(false);
  });
});
