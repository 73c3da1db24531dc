// Production deployment (issue 4): PID 1, right-sized workers, HTTPS, pre-start, pidfile, crash budget,
// shutdown delay, environment and privileges. Real processes; PID 1 via `unshare --pid --fork`.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { zombieChildren } from "../src/os/reaper.ts";
import {
  childPids,
  fixture,
  freePort,
  get,
  isAlive,
  reachableBinary,
  removeReachableBinary,
  runToExit,
  startSupervisor,
  waitFor,
} from "./helpers.ts";

afterAll(removeReachableBinary);

const READY = /ready: \d+ workers? listening/;
const isRoot = process.getuid?.() === 0;
const hasUnshare =
  isRoot && Bun.spawnSync(["unshare", "--pid", "--fork", "--mount-proc", "true"]).exitCode === 0;
const hasTaskset = Bun.which("taskset") !== null;
const hasOpenssl = Bun.which("openssl") !== null;

describe.if(hasUnshare)("as PID 1 (unshare --pid --fork --mount-proc)", () => {
  test("orphans are reaped, a crashed worker is restarted, TERM stops everything with exit 0", async () => {
    const port = freePort();
    await using sup = startSupervisor(
      [
        "unshare",
        "--pid",
        "--fork",
        "--mount-proc",
        process.execPath,
        "src/cli.ts",
        "run",
        fixture("orphans-app.ts"),
        "-w",
        "2",
        "-p",
        String(port),
      ],
      { raw: true, port },
    );
    await sup.waitForOutput(READY);
    expect(sup.output()).toMatch(/supervisor pid 1, reaping orphans/);
    // unshare is our child; the supervisor (pid 1 inside) is unshare's child.
    const supervisor = await waitFor(() => childPids(sup.pid)[0], "the supervisor process");
    for (let i = 0; i < 20; i++) expect((await get(port)).status).toBe(200);
    await waitFor(() => zombieChildren(supervisor).length === 0, "no zombies", 2_000);
    const [victim] = childPids(supervisor);
    process.kill(victim as number, "SIGKILL");
    await waitFor(
      () => childPids(supervisor).length === 2 && !childPids(supervisor).includes(victim as number),
      "a replacement",
    );
    expect((await get(port)).status).toBe(200);
    process.kill(supervisor, "SIGTERM");
    expect(await sup.exited).toBe(0);
    expect(isAlive(supervisor)).toBe(false);
  });
});

describe("worker count", () => {
  test.if(hasTaskset)("auto follows the CPUs this process may use (taskset -c 0 gives 1)", async () => {
    const port = freePort();
    await using sup = startSupervisor(
      [
        "taskset",
        "-c",
        "0",
        process.execPath,
        "src/cli.ts",
        "run",
        fixture("pid-app.ts"),
        "-p",
        String(port),
      ],
      { raw: true, port, env: { WEB_CONCURRENCY: undefined } },
    );
    await sup.waitForOutput(/starting 1 worker \(auto: affinity mask \(1 of \d+ CPUs\)\)/);
    await sup.waitForOutput(/ready: 1 worker listening/);
  });

  test("WEB_CONCURRENCY=3 gives 3, and -w wins over it", async () => {
    const a = await runToExit(["run", fixture("pid-app.ts"), "--print-config"], {
      env: { WEB_CONCURRENCY: "3" },
    });
    expect(a.stdout).toMatch(/^workers\s+3\s+WEB_CONCURRENCY$/m);
    const b = await runToExit(["run", fixture("pid-app.ts"), "-w", "2", "--print-config"], {
      env: { WEB_CONCURRENCY: "3" },
    });
    expect(b.stdout).toMatch(/^workers\s+2\s+-w\/--workers$/m);
    const c = await runToExit(["run", fixture("pid-app.ts"), "--print-config"], {
      env: { WEB_CONCURRENCY: undefined },
    });
    expect(c.stdout).toMatch(/^workers\s+auto\s+default$/m);
  });
});

describe.if(hasOpenssl)("HTTPS", () => {
  test("--tls-cert/--tls-key serve HTTPS with a self-signed certificate made here", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sv-tls-"));
    const made = Bun.spawnSync(
      [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-days",
        "1",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ],
      { stderr: "pipe" },
    );
    expect(made.exitCode).toBe(0);
    await using sup = startSupervisor([
      "run",
      fixture("pid-app.ts"),
      "-w",
      "2",
      "--tls-cert",
      join(dir, "cert.pem"),
      "--tls-key",
      join(dir, "key.pem"),
    ]);
    await sup.waitForOutput(READY);
    expect(sup.output()).toMatch(new RegExp(`on https://0.0.0.0:${sup.port}`));
    const res = await fetch(`https://127.0.0.1:${sup.port}/`, { tls: { rejectUnauthorized: false } });
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^pid \d+/);
  });

  test("a missing key file is one line and exit 2", async () => {
    const { code, stderr } = await runToExit([
      "run",
      fixture("pid-app.ts"),
      "--tls-cert",
      "nope.pem",
      "--tls-key",
      "nope.key",
    ]);
    expect(code).toBe(2);
    expect(stderr.trim()).toBe("supervisor: --tls-cert is missing or not a readable file: nope.pem");
    const half = await runToExit(["run", fixture("pid-app.ts"), "--tls-cert", "cert.pem"]);
    expect(half.code).toBe(2);
    expect(half.stderr).toMatch(/--tls-cert needs its pair/);
  });
});

describe("steps before start", () => {
  test("a failing --pre-start starts no worker and returns its exit status", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sv-pre-"));
    const { code, stdout, stderr } = await runToExit([
      "run",
      fixture("pid-app.ts"),
      "--pre-start",
      `echo migrating > ${dir}/ran; exit 7`,
    ]);
    expect(code).toBe(7);
    expect(readFileSync(join(dir, "ran"), "utf8")).toBe("migrating\n");
    expect(stderr).toMatch(/pre-start failed: exit code 7 after \d+ ms; starting nothing/);
    expect(stdout + stderr).not.toMatch(/starting \d+ worker|ready:/);
  });

  test("a passing --pre-start runs once, before the workers, with --env set", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sv-pre-"));
    await using sup = startSupervisor([
      "run",
      fixture("pid-app.ts"),
      "-w",
      "2",
      "--env",
      "MIGRATION=v42",
      "--pre-start",
      `echo $MIGRATION >> ${dir}/log`,
    ]);
    await sup.waitForOutput(READY);
    expect(readFileSync(join(dir, "log"), "utf8")).toBe("v42\n");
    expect(sup.output().indexOf("pre-start finished")).toBeLessThan(sup.output().indexOf("ready:"));
  });
});

describe("files and identity", () => {
  test("--pidfile holds the supervisor's pid, refuses a second live one, and is removed on exit", async () => {
    const pidfile = join(mkdtempSync(join(tmpdir(), "sv-pid-")), "supervisor.pid");
    await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "1", "--pidfile", pidfile]);
    await sup.waitForOutput(READY);
    expect(readFileSync(pidfile, "utf8").trim()).toBe(String(sup.pid));
    const second = await runToExit(["run", fixture("pid-app.ts"), "--pidfile", pidfile]);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(String(sup.pid));
    process.kill(sup.pid, "SIGTERM");
    expect(await sup.exited).toBe(0);
    expect(existsSync(pidfile)).toBe(false);
  });

  test("--chdir and --env: the app is found and run from there, with the variables set", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sv-chdir-"));
    writeFileSync(
      join(dir, "app.ts"),
      "export default { fetch: () => new Response(process.cwd() + ' ' + process.env.GREETING) };\n",
    );
    await using sup = startSupervisor([
      "run",
      "app.ts",
      "--chdir",
      dir,
      "--env",
      "GREETING=hi",
      "--env=OTHER=1",
    ]);
    await sup.waitForOutput(READY);
    expect((await get(sup.port)).body).toBe(`${dir} hi`);
  });

  test.if(isRoot)("--user nobody runs workers as that user", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sv-user-"));
    chmodSync(dir, 0o755);
    writeFileSync(
      join(dir, "app.ts"),
      "export default { fetch: () => new Response(String(process.getuid())) };\n",
    );
    chmodSync(join(dir, "app.ts"), 0o644);
    // The worker runs as nobody: the bun it runs (the binary itself) must be one nobody can reach,
    // wherever the checkout is (a private mktemp clone is not).
    await using sup = startSupervisor(["run", join(dir, "app.ts"), "-w", "1", "--user", "nobody"], {
      binary: reachableBinary(),
      cwd: dir,
    });
    await sup.waitForOutput(READY);
    expect((await get(sup.port)).body).toBe("65534");
  });
});

describe("crash budget and shutdown delay", () => {
  test("a worker that keeps dying is given up on: exit 4 after --max-restarts early deaths", async () => {
    const { code, stderr } = await runToExit(
      ["run", fixture("crash-app.ts"), "-w", "1", "--max-restarts", "3"],
      {
        env: { CRASH_AFTER_MS: "10" },
      },
    );
    expect(code).toBe(4);
    expect(stderr).toMatch(/4 early deaths in a row; giving up \(--max-restarts 3\)/);
  });

  test("--shutdown-delay keeps serving after TERM, then drains and exits 0", async () => {
    await using sup = startSupervisor(["run", fixture("pid-app.ts"), "-w", "2", "--shutdown-delay", "1"]);
    await sup.waitForOutput(READY);
    const workers = sup.workers();
    process.kill(sup.pid, "SIGTERM");
    await sup.waitForOutput(/serving 1\.0 s more \(--shutdown-delay\), then draining/);
    expect((await get(sup.port)).status).toBe(200);
    expect(await sup.exited).toBe(0);
    for (const pid of workers) expect(isAlive(pid)).toBe(false);
  });
});
