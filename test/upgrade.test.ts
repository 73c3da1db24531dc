// Upgrading the supervisor itself (USR2, `supervisor upgrade`), from the compiled binary, with real
// processes: the new build takes over without a failed request, or the old one keeps serving.
import { afterAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemdWithoutNotify } from "../src/runtime/upgrade.ts";
import {
  childPids,
  ensureBinary,
  fixture,
  freePort,
  get,
  isAlive,
  pidOf,
  runScenario,
  startSupervisor,
  waitFor,
} from "./helpers.ts";

const READY = /ready: \d+ workers? listening/;
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** What test/fixtures/upgrade-under-load.ts reports. */
interface Scenario {
  oldPid: number;
  oldCode: number;
  oldAlive: boolean;
  takeoverMs: number;
  answer?: { code: number; stdout: string; stderr: string };
  ok: number;
  failed: number;
  errors: string[];
  before: number[];
  after: number[];
  pidfile: number;
  status: { pid: number; version: string };
  adminVersion: string;
  version: string;
  output: string;
}

/** Whether the kernel moves connections queued on a closing listener to the others (README: "Queued
 * connections of a stopping worker"): in runScenario's private network namespace (root), or here. */
const hostMigratesQueued = (() => {
  try {
    return readFileSync("/proc/sys/net/ipv4/tcp_migrate_req", "utf8").trim() === "1";
  } catch {
    return false;
  }
})();

function expectTakenOver(run: Scenario, { everyRequest = true } = {}): void {
  if (everyRequest) {
    expect(run.errors).toEqual([]);
    expect(run.failed).toBe(0);
  }
  expect(run.ok).toBeGreaterThan(100);
  expect(run.oldCode).toBe(0);
  expect(run.oldAlive).toBe(false);
  // The new build answers everywhere: pidfile, control socket, admin port, and its own --version.
  expect(run.status.pid).not.toBe(run.oldPid);
  expect(run.pidfile).toBe(run.status.pid);
  expect(run.status.version).toBe("0.1.0-next");
  expect(run.adminVersion).toBe("0.1.0-next");
  expect(run.version).toBe("0.1.0-next");
  expect(run.after).toHaveLength(2);
  for (const pid of run.after) expect(run.before.includes(pid)).toBe(false);
}

describe("upgrade to another build under load", () => {
  test("keep-alive clients, `supervisor upgrade`: 0 failed requests; it answers once the old one is gone", async () => {
    const run = await runScenario<Scenario>(fixture("upgrade-under-load.ts"), ["keep-alive"]);
    expectTakenOver(run);
    expect(run.answer?.code).toBe(0);
    expect(run.answer?.stdout).toMatch(
      new RegExp(
        `^upgrade finished: supervisor pid ${run.status.pid} \\(version 0\\.1\\.0-next\\) took over`,
      ),
    );
  });

  test("one connection per request, kill -USR2: 0 failed requests", async () => {
    const run = await runScenario<Scenario>(fixture("upgrade-under-load.ts"), ["close"]);
    // Without tcp_migrate_req=1 (not root: no private namespace) the kernel resets connections still
    // queued on the old workers' listeners when they close, however they drain: only then may some fail.
    expectTakenOver(run, { everyRequest: run.isolated || hostMigratesQueued });
    expect(run.output).toMatch(/upgrade: pid \d+ is gone; control socket: /);
  });
});

/** The compiled binary at a path of its own (so the test can replace or remove the file), a pidfile
 * and a control socket next to it. */
function installed() {
  const dir = mkdtempSync(join(tmpdir(), "sv-upgrade-"));
  dirs.push(dir);
  const bin = join(dir, "supervisor");
  copyFileSync(ensureBinary(), bin);
  chmodSync(bin, 0o755);
  const entry = join(dir, "app.ts");
  copyFileSync(fixture("pid-app.ts"), entry);
  return { dir, bin, entry, pidfile: join(dir, "supervisor.pid"), control: join(dir, "control.sock") };
}

/** `supervisor <args> --control <path>` from dist/supervisor (the installed file may be broken). */
async function control(args: string[], path: string) {
  const p = Bun.spawn([ensureBinary(), ...args, "--control", path], { stdout: "pipe", stderr: "pipe" });
  const [code, stdout, stderr] = await Promise.all([
    p.exited,
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
  ]);
  return { code, stdout, stderr };
}

describe("a failed upgrade leaves the old supervisor serving", () => {
  const start = (i: ReturnType<typeof installed>, extra: string[] = []) =>
    startSupervisor(["run", i.entry, "-w", "2", "--pidfile", i.pidfile, "--control", i.control, ...extra], {
      binary: i.bin,
    });

  /** Still serving from the same workers, with nothing left of the attempt. */
  async function expectUnchanged(
    sup: ReturnType<typeof start>,
    i: ReturnType<typeof installed>,
    before: number[],
  ) {
    expect(isAlive(sup.pid)).toBe(true);
    await waitFor(() => childPids(sup.pid).length === 2, "only the old workers as children");
    expect(childPids(sup.pid).sort()).toEqual(before.sort());
    expect(before).toContain(pidOf((await get(sup.port)).body));
    expect(Number(readFileSync(i.pidfile, "utf8"))).toBe(sup.pid);
    const status = await control(["status", "--json"], i.control);
    expect(JSON.parse(status.stdout).pid).toBe(sup.pid);
  }

  test("the new file is a script that exits 1: upgrade exits 1 with one line", async () => {
    const i = installed();
    await using sup = start(i);
    await sup.waitForOutput(READY);
    const before = sup.workers();
    unlinkSync(i.bin);
    writeFileSync(i.bin, "#!/bin/sh\nexit 1\n", { mode: 0o755 });
    const answer = await control(["upgrade"], i.control);
    expect(answer.code).toBe(1);
    expect(answer.stderr).toMatch(
      /^supervisor: upgrade failed: the new supervisor \(pid \d+\) exited with exit code 1 before its workers were ready; the old supervisor keeps serving\n$/,
    );
    await expectUnchanged(sup, i, before);
  });

  test("the binary is missing: upgrade exits 1 naming it", async () => {
    const i = installed();
    await using sup = start(i);
    await sup.waitForOutput(READY);
    const before = sup.workers();
    unlinkSync(i.bin);
    const answer = await control(["upgrade"], i.control);
    expect(answer.code).toBe(1);
    expect(answer.stderr).toContain(
      `upgrade failed: the new supervisor could not be started: ${i.bin} is missing`,
    );
    await expectUnchanged(sup, i, before);
  });

  test("the new supervisor's workers fail to boot (a broken app file): upgrade exits 1", async () => {
    const i = installed();
    await using sup = start(i);
    await sup.waitForOutput(READY);
    const before = sup.workers();
    writeFileSync(i.entry, "export default { fetch( { oops };\n");
    const answer = await control(["upgrade"], i.control);
    expect(answer.code).toBe(1);
    expect(answer.stderr).toMatch(/upgrade failed: the new supervisor \(pid \d+\) exited with exit code 3/);
    expect(sup.output()).toMatch(/worker failed to boot/);
    await expectUnchanged(sup, i, before);
  });

  test("a second upgrade while one runs is refused; the first one finishes", async () => {
    const i = installed();
    copyFileSync(fixture("slow-boot-app.ts"), i.entry);
    await using sup = startSupervisor(
      ["run", i.entry, "-w", "1", "--pidfile", i.pidfile, "--control", i.control],
      { binary: i.bin, env: { BOOT_MS: "1500" } },
    );
    await sup.waitForOutput(READY);
    const first = control(["upgrade"], i.control);
    await sup.waitForOutput(/upgrade: started .* as pid \d+/);
    const second = await control(["upgrade"], i.control);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(
      /^supervisor: upgrade refused: an upgrade is already under way \(new supervisor pid \d+\)\n$/,
    );
    process.kill(sup.pid, "SIGUSR2");
    await sup.waitForOutput(/upgrade refused: an upgrade is already under way/);
    expect((await first).code).toBe(0);
    expect(await sup.proc.exited).toBe(0);
  });
});

test("a stop during an upgrade stops the new supervisor too: nothing is left behind", async () => {
  const i = installed();
  copyFileSync(fixture("slow-boot-app.ts"), i.entry);
  await using sup = startSupervisor(["run", i.entry, "-w", "1", "--control", i.control], {
    binary: i.bin,
    env: { BOOT_MS: "1500" },
  });
  await sup.waitForOutput(READY);
  process.kill(sup.pid, "SIGUSR2");
  const successor = Number(
    /upgrade: started .* as pid (\d+)/.exec(await sup.waitForOutput(/upgrade: started .* as pid \d+/))?.[1],
  );
  await waitFor(() => childPids(successor).length === 1, "the new supervisor's worker");
  const itsWorker = childPids(successor)[0] as number;
  process.kill(sup.pid, "SIGTERM");
  expect(await sup.proc.exited).toBe(0);
  await waitFor(() => !isAlive(successor) && !isAlive(itsWorker), "the new supervisor and its worker gone");
  expect(sup.output()).not.toMatch(/upgrade failed/);
});

test("supervisor signal USR1 reaches every worker", async () => {
  const i = installed();
  await using sup = startSupervisor(["run", i.entry, "-w", "2", "--control", i.control], { binary: i.bin });
  await sup.waitForOutput(READY);
  const answer = await control(["signal", "USR1"], i.control);
  expect(answer).toMatchObject({ code: 0, stdout: "SIGUSR1 sent to 2 workers\n" });
  for (const pid of sup.workers()) await sup.waitForOutput(new RegExp(`signal SIGUSR1 pid ${pid}`));
  expect((await control(["signal", "TERM"], i.control)).code).toBe(2);
});

const canBePid1 =
  process.getuid?.() === 0 &&
  Bun.spawnSync(["unshare", "--pid", "--fork", "--mount-proc", "true"]).exitCode === 0;

test.if(canBePid1)(
  "as PID 1 (a container) USR2 and `supervisor upgrade` are refused with one line",
  async () => {
    const i = installed();
    const port = freePort();
    await using sup = startSupervisor(
      [
        "unshare",
        "--pid",
        "--fork",
        "--mount-proc",
        i.bin,
        "run",
        i.entry,
        "-w",
        "1",
        "--control",
        i.control,
        "-p",
        String(port),
      ],
      { raw: true, port },
    );
    await sup.waitForOutput(READY);
    // unshare is our child; the supervisor (pid 1 inside) is unshare's child.
    const supervisor = await waitFor(() => childPids(sup.pid)[0], "the supervisor process");
    const answer = await control(["upgrade"], i.control);
    expect(answer.code).toBe(1);
    expect(answer.stderr).toBe(
      "supervisor: upgrade refused: as PID 1 (a container) the supervisor cannot be replaced by a new process; upgrade the container image instead\n",
    );
    process.kill(supervisor, "SIGUSR2");
    await waitFor(() => sup.output().match(/upgrade refused: as PID 1/g)?.length === 2, "the USR2 refusal");
    expect(childPids(supervisor)).toHaveLength(1);
    expect((await get(sup.port)).status).toBe(200);
    // Stopped as a container runtime would (TERM), so it removes its /dev/shm directory: a SIGKILLed
    // PID 1's directory cannot be told from a live one's by the next supervisor.
    process.kill(supervisor, "SIGTERM");
    expect(await sup.exited).toBe(0);
  },
);

const python = Bun.which("python3");

test.if(python !== null)(
  "under systemd (NOTIFY_SOCKET) the main pid moves to the new supervisor",
  async () => {
    const i = installed();
    const socket = join(i.dir, "notify.sock");
    // systemd's side: one datagram per message, printed as JSON strings, one a line.
    const receiver = Bun.spawn(
      [
        python as string,
        "-c",
        "import json,socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint('bound',flush=True)\nwhile True: print(json.dumps(s.recv(4096).decode()),flush=True)",
        socket,
      ],
      { stdout: "pipe", stderr: "inherit" },
    );
    try {
      const lines: string[] = [];
      void (async () => {
        const decoder = new TextDecoder();
        for await (const chunk of receiver.stdout)
          lines.push(...decoder.decode(chunk).split("\n").filter(Boolean));
      })();
      await waitFor(() => lines.includes("bound"), "the notify socket");
      await using sup = startSupervisor(["run", i.entry, "-w", "1", "--control", i.control], {
        binary: i.bin,
        env: { NOTIFY_SOCKET: socket },
      });
      await sup.waitForOutput(READY);
      expect((await control(["upgrade"], i.control)).code).toBe(0);
      const status = await waitFor(async () => {
        const s = await control(["status", "--json"], i.control);
        return s.code === 0 && JSON.parse(s.stdout).pid !== sup.pid ? JSON.parse(s.stdout) : undefined;
      }, "the new supervisor");
      const messages = () => lines.filter((l) => l !== "bound").map((l) => JSON.parse(l) as string);
      // The old one (still the main pid) names the new one; the new one then says it is ready.
      await waitFor(() => messages().length >= 2, "two notify messages");
      expect(messages().filter((m) => m.includes("MAINPID="))).toEqual([
        `MAINPID=${status.pid}`,
        `MAINPID=${status.pid}\nREADY=1`,
      ]);
    } finally {
      receiver.kill();
    }
  },
);

test("a systemd service is recognised only with INVOCATION_ID, systemd as parent and no NOTIFY_SOCKET", () => {
  const service = { INVOCATION_ID: "f00" };
  expect(systemdWithoutNotify({}, 1)).toBe(false);
  expect(systemdWithoutNotify(service, 4242)).toBe(false); // a terminal inside a systemd scope
  expect(systemdWithoutNotify({ ...service, NOTIFY_SOCKET: "/run/systemd/notify" }, 1)).toBe(false);
  const pid1IsSystemd = readFileSync("/proc/1/comm", "utf8").trim() === "systemd";
  expect(systemdWithoutNotify(service, 1)).toBe(pid1IsSystemd);
});
