// Configuration (issue 7): one precedence over four places, clear errors, check, HUP re-read, --watch.
import { describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { emptyLoad, fixture, get, loadUntil, runToExit, startSupervisor, waitFor } from "./helpers.ts";

const READY = /ready: \d+ workers? listening/;

/** A directory holding app.ts and the given config file. */
function project(configName?: string, config?: string): string {
  const dir = mkdtempSync(join(tmpdir(), "sv-config-"));
  copyFileSync(fixture("pid-app.ts"), join(dir, "app.ts"));
  if (configName && config !== undefined) writeFileSync(join(dir, configName), config);
  return dir;
}

/** `supervisor run --print-config` in `dir`: option -> [value, source]. */
async function printConfig(dir: string, args: string[] = [], env: Record<string, string | undefined> = {}) {
  const { code, stdout, stderr } = await runToExit(["run", ...args, "--print-config"], {
    cwd: dir,
    noPortFlag: true,
    env: { WEB_CONCURRENCY: undefined, PORT: undefined, HOST: undefined, ...env },
  });
  if (code !== 0) throw new Error(stderr);
  const rows = new Map<string, [string, string]>();
  for (const line of stdout.split("\n").slice(1)) {
    const [key, value, ...source] = line.trim().split(/\s{2,}/);
    if (key) rows.set(key, [value as string, source.join(" ")]);
  }
  return rows;
}

describe("precedence: flag > environment > config file > default", () => {
  const config = "export default { entry: 'app.ts', workers: 3, gracefulTimeout: 5, port: 4100 };\n";

  test("the config file sets what nothing else does", async () => {
    const rows = await printConfig(project("supervisor.config.ts", config));
    expect(rows.get("workers")).toEqual(["3", "supervisor.config.ts: workers"]);
    expect(rows.get("gracefulTimeout")).toEqual(["5 s", "supervisor.config.ts: gracefulTimeout"]);
    expect(rows.get("entry")).toEqual(["app.ts", "supervisor.config.ts: entry"]);
    expect(rows.get("host")).toEqual(["0.0.0.0", "default"]);
  });

  test("the environment wins over the config file (SUPERVISOR_<OPTION> and the conventions)", async () => {
    const dir = project("supervisor.config.ts", config);
    const rows = await printConfig(dir, [], {
      SUPERVISOR_WORKERS: "2",
      SUPERVISOR_GRACEFUL_TIMEOUT: "7",
      PORT: "4200",
    });
    expect(rows.get("workers")).toEqual(["2", "SUPERVISOR_WORKERS"]);
    expect(rows.get("gracefulTimeout")).toEqual(["7 s", "SUPERVISOR_GRACEFUL_TIMEOUT"]);
    expect(rows.get("port")).toEqual(["4200", "PORT"]);
    const conv = await printConfig(dir, [], { WEB_CONCURRENCY: "5" });
    expect(conv.get("workers")).toEqual(["5", "WEB_CONCURRENCY"]);
  });

  test("a flag wins over both", async () => {
    const dir = project("supervisor.config.ts", config);
    const rows = await printConfig(dir, ["-w", "4", "--graceful-timeout", "9", "-p", "4300"], {
      SUPERVISOR_WORKERS: "2",
      PORT: "4200",
    });
    expect(rows.get("workers")).toEqual(["4", "-w/--workers"]);
    expect(rows.get("gracefulTimeout")).toEqual(["9 s", "--graceful-timeout"]);
    expect(rows.get("port")).toEqual(["4300", "-p/--port"]);
  });

  test("--no-<flag> turns off a boolean the config file turned on", async () => {
    const dir = project("supervisor.config.json", JSON.stringify({ entry: "app.ts", accessLog: true }));
    expect((await printConfig(dir)).get("accessLog")).toEqual(["true", "supervisor.config.json: accessLog"]);
    expect((await printConfig(dir, ["--no-access-log"])).get("accessLog")).toEqual(["false", "--access-log"]);
  });

  test(".json config and --config <file>", async () => {
    const dir = project("custom.json", JSON.stringify({ entry: "app.ts", workers: 2, accessLog: true }));
    const rows = await printConfig(dir, ["--config", "custom.json"]);
    expect(rows.get("workers")).toEqual(["2", "custom.json: workers"]);
    expect(rows.get("accessLog")).toEqual(["true", "custom.json: accessLog"]);
  });
});

describe("bad configuration: one line per problem naming its source, exit 2", () => {
  test.each([
    [
      "unknown key",
      "export default { entry: 'app.ts', wokers: 2 };",
      /^supervisor: supervisor.config.ts: unknown key 'wokers' \(did you mean 'workers'\?\)$/m,
    ],
    [
      "wrong type",
      "export default { entry: 'app.ts', port: 'http' };",
      /^supervisor: supervisor.config.ts: port must be a port number from 1 to 65535, got 'http'$/m,
    ],
    [
      "out of range",
      "export default { entry: 'app.ts', workers: 5000 };",
      /^supervisor: supervisor.config.ts: workers must be a whole number from 1 to 1024 or auto, got '5000'$/m,
    ],
    [
      "not an object",
      "export default 42;",
      /^supervisor: supervisor.config.ts: the default export must be an object of options/m,
    ],
    ["a broken file", "export default { entry: ", /^supervisor: supervisor.config.ts: cannot be loaded: /m],
    [
      "a hook that is not a function",
      "export default { entry: 'app.ts', onReady: 1 };",
      /onReady must be a function/,
    ],
  ])("%s", async (_, config, pattern) => {
    const dir = project("supervisor.config.ts", config);
    const { code, stderr } = await runToExit(["run"], { cwd: dir, noPortFlag: true });
    expect(code).toBe(2);
    expect(stderr).toMatch(pattern);
    expect(stderr).not.toMatch(/^\s+at /m);
  });

  test("several problems at once: one line each, from env, flag and file", async () => {
    const dir = project("supervisor.config.ts", "export default { entry: 'app.ts', timeout: -1 };");
    const { code, stderr } = await runToExit(["run", "--boot-timeout", "0"], {
      cwd: dir,
      env: { SUPERVISOR_MAX_MEMORY: "lots" },
    });
    expect(code).toBe(2);
    const lines = stderr.trim().split("\n");
    expect(lines).toEqual([
      "supervisor: --boot-timeout must be a number of seconds, more than 0 (at most 86400), got '0'",
      "supervisor: supervisor.config.ts: timeout must be a number of seconds, 0 or more (at most 86400), got '-1'",
      "supervisor: SUPERVISOR_MAX_MEMORY must be a size such as 512M, 1G or 800K, got 'lots'",
    ]);
  });

  test("`supervisor run` alone starts the config's entry", async () => {
    const dir = project("supervisor.config.ts", "export default { entry: 'app.ts', workers: 2 };");
    await using sup = startSupervisor(["run"], { cwd: dir });
    await sup.waitForOutput(/ready: 2 workers/);
    expect((await get(sup.port)).status).toBe(200);
  });
});

describe("hooks", () => {
  test("onReady and onWorkerExit run in the supervisor", async () => {
    const dir = project();
    const log = join(dir, "hooks.log");
    writeFileSync(
      join(dir, "supervisor.config.ts"),
      `import { appendFileSync } from "node:fs";
export default {
  entry: "app.ts",
  workers: 2,
  onReady(status) { appendFileSync(${JSON.stringify(log)}, "ready " + status.workersReady + "\\n"); },
  onWorkerExit(exit) { appendFileSync(${JSON.stringify(log)}, "exit " + exit.slot + " " + exit.signal + "\\n"); },
};`,
    );
    await using sup = startSupervisor(["run"], { cwd: dir });
    await sup.waitForOutput(/ready: 2 workers/);
    await waitFor(() => existsSync(log) && readFileSync(log, "utf8") === "ready 2\n", "onReady");
    const [victim] = sup.workers();
    process.kill(victim as number, "SIGKILL");
    await waitFor(() => /^exit \d SIGKILL$/m.test(readFileSync(log, "utf8")), "onWorkerExit");
  });
});

describe("supervisor check", () => {
  test("ok: 0; an app that cannot boot: 3; a bad config: 2", async () => {
    const ok = await runToExit(["check", fixture("pid-app.ts")]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^ok: .*pid-app\.ts loads and serves/);
    const broken = await runToExit(["check", fixture("throw-app.ts")]);
    expect(broken.code).toBe(3);
    expect(broken.stderr).toMatch(/failed to boot: .*database URL is not set/s);
    const dir = project("supervisor.config.ts", "export default { entry: 'app.ts', workers: 0 };");
    expect((await runToExit(["check"], { cwd: dir })).code).toBe(2);
  });
});

describe("reloading configuration", () => {
  test("HUP re-reads the config file: new worker count and environment", async () => {
    const dir = project("supervisor.config.ts", "export default { entry: 'app.ts', workers: 2 };");
    await using sup = startSupervisor(["run"], { cwd: dir });
    await sup.waitForOutput(/ready: 2 workers/);
    writeFileSync(join(dir, "supervisor.config.ts"), "export default { entry: 'app.ts', workers: 3 };");
    process.kill(sup.pid, "SIGHUP");
    await sup.waitForOutput(/config file re-read/);
    await waitFor(() => sup.workers().length === 3, "3 workers");
  });

  test("a config file broken since start: the reload keeps the old settings", async () => {
    const dir = project("supervisor.config.ts", "export default { entry: 'app.ts', workers: 2 };");
    await using sup = startSupervisor(["run"], { cwd: dir });
    await sup.waitForOutput(/ready: 2 workers/);
    writeFileSync(join(dir, "supervisor.config.ts"), "export default { entry: 'app.ts', workers: 'many' };");
    process.kill(sup.pid, "SIGHUP");
    await sup.waitForOutput(/reloading with the previous settings/);
    await sup.waitForOutput(/reload finished: 2 workers/);
  });
});

describe("--watch", () => {
  test("editing the app under load changes the response within 2 s with 0 failed requests; a syntax error keeps the old one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sv-watch-"));
    const entry = join(dir, "app.ts");
    const version = (v: string) =>
      `export default { fetch: () => new Response("version ${v} pid " + process.pid) };\n`;
    writeFileSync(entry, version("1"));
    await using sup = startSupervisor(["run", entry, "-w", "2", "--watch"]);
    await sup.waitForOutput(READY);
    let changedAfter = 0;
    const progress = emptyLoad();
    const run = (async () => {
      await waitFor(() => progress.ok >= 20, "the load to be under way");
      writeFileSync(entry, version("2"));
      const t0 = performance.now();
      await waitFor(async () => (await get(sup.port)).body.startsWith("version 2"), "version 2", 5_000);
      changedAfter = performance.now() - t0;
      await sup.waitForOutput(/reload finished/);
      await waitFor(() => sup.workers().length === 2, "old workers gone");
      writeFileSync(entry, "export default { fetch( };\n");
      await sup.waitForOutput(/reload failed, keeping 2 running worker/);
      const served = progress.ok;
      await waitFor(
        () => progress.ok >= served + 20,
        "the old workers to keep serving after the failed reload",
      );
    })();
    const load = await loadUntil(sup.port, run, 4, { result: progress });
    expect(load.errors).toEqual([]);
    expect(load.failed).toBe(0);
    expect(changedAfter).toBeLessThan(2_000);
    expect((await get(sup.port)).body).toMatch(/^version 2/);
    writeFileSync(entry, version("3"));
    await waitFor(
      async () => (await get(sup.port)).body.startsWith("version 3"),
      "the next good change",
      5_000,
    );
  });
});
