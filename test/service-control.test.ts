// Control commands for a system service: root reaches a supervisor that runs as a service user with
// no XDG_RUNTIME_DIR (as systemd starts one) and a private /tmp (PrivateTmp=, a container), through
// its pidfile. And a read-only /tmp: the start-up line says where control can be had.
// Root only (a user, a mount namespace); skipped with the reason elsewhere.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureBinary, fixture, get, runToExit, startSupervisor, waitFor } from "./helpers.ts";

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
const canUnshareMount = isRoot && Bun.spawnSync(["unshare", "-m", "true"]).exitCode === 0;
/** The compiled binary and the app, where the service user reaches them under a /tmp of its own: the
 * checkout may itself be under /tmp (hidden by that mount) or in a 0700 directory. */
let served: { dir: string; binary: string; app: string } | undefined;
beforeAll(() => {
  if (!canUnshareMount) return;
  const dir = mkdtempSync("/var/tmp/sv-service-bin-");
  chmodSync(dir, 0o755);
  const binary = join(dir, "supervisor");
  copyFileSync(ensureBinary(), binary);
  chmodSync(binary, 0o755);
  const app = join(dir, "app.ts");
  copyFileSync(fixture("pid-app.ts"), app);
  chmodSync(app, 0o644);
  served = { dir, binary, app };
}, 120_000);
afterAll(() => {
  if (served) rmSync(served.dir, { recursive: true, force: true });
});

/** A supervisor as systemd would start a `User=` service: that user, no XDG_RUNTIME_DIR, and here
 * also a /tmp of its own (mount namespace) that root's /tmp does not show. */
function serviceSupervisor(args: string[], tmpOptions = "mode=1777") {
  const { binary, app } = served as NonNullable<typeof served>;
  return startSupervisor(
    [
      "unshare",
      "-m",
      "sh",
      "-c",
      `mount -t tmpfs -o ${tmpOptions} tmpfs /tmp && exec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups "$@"`,
      "sh",
      binary,
      "run",
      app,
      ...args,
    ],
    { raw: true, env: { XDG_RUNTIME_DIR: undefined, HOME: "/nonexistent" } },
  );
}

describe.skipIf(!canUnshareMount)("a supervisor run as a service user (root)", () => {
  test("root's status, reload, scale and stop reach it through --pidfile; plain status says how", async () => {
    const dir = mkdtempSync("/var/tmp/sv-service-");
    chownSync(dir, NOBODY, NOBODY);
    const pidfile = join(dir, "supervisor.pid");
    const port = 20_000 + (process.pid % 10_000);
    try {
      await using sup = serviceSupervisor(["-w", "1", "-p", String(port), "--pidfile", pidfile]);
      await waitFor(async () => (await get(port)).status === 200, "the service to answer");
      // Root's own lookup (an empty runtime dir of its own) finds nothing, and says what to pass.
      const own = { env: { XDG_RUNTIME_DIR: mkdtempSync(join(tmpdir(), "sv-root-")) } };
      const plain = await runToExit(["status"], own);
      expect(plain.code).toBe(2);
      expect(plain.stderr).toContain("pass --pidfile <its pidfile>");

      const status = await runToExit(["status", "--pidfile", pidfile, "--json"], own);
      expect(status.stderr).toBe("");
      expect(status.code).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ pid: sup.pid, phase: "running", workersReady: 1 });
      const reload = await runToExit(["reload", "--pidfile", pidfile], own);
      expect(reload.stdout).toMatch(/^reload finished: 1 workers? replaced/);
      const scale = await runToExit(["scale", "2", "--pidfile", pidfile], own);
      expect(scale.stdout).toBe("2 workers ready\n");
      const stop = await runToExit(["stop", "--pidfile", pidfile], own);
      expect(stop.code).toBe(0);
      expect(await sup.exited).toBe(0);
      // Gone: its pidfile is removed, and asking again is a usage error naming the file.
      const after = await runToExit(["status", "--pidfile", pidfile], own);
      expect(after.code).toBe(2);
      expect(after.stderr).toContain(`pidfile ${pidfile} does not exist`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a read-only /tmp: the start-up line says to pass --control on a writable volume; with it, control works", async () => {
    const port = 30_000 + (process.pid % 10_000);
    {
      await using sup = serviceSupervisor(["-w", "1", "-p", String(port)], "ro");
      const line = await sup.waitForOutput(/no control socket .*/);
      expect(line).toContain("pass --control <path> on a writable volume");
      await waitFor(async () => (await get(port)).status === 200, "it serves anyway");
    }
    const dir = mkdtempSync("/var/tmp/sv-control-");
    chownSync(dir, NOBODY, NOBODY);
    try {
      const control = join(dir, "control.sock");
      await using sup = serviceSupervisor(["-w", "1", "-p", String(port), "--control", control], "ro");
      await waitFor(async () => (await get(port)).status === 200, "the service to answer");
      const status = await runToExit(["status", "--control", control, "--json"]);
      expect(JSON.parse(status.stdout)).toMatchObject({ pid: sup.pid, phase: "running" });
      process.kill(sup.pid, "SIGTERM");
      expect(await sup.exited).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
