// The supervisor's own process runs no regular expression (src/core/text.ts says why: 0.5 MB of the
// parent's memory). A run from source with most options on, a status request and a HUP reload, with
// a preload that counts every regexp the process runs.

import { expect, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixture, freePort, get, ROOT, startSupervisor, waitFor } from "./helpers.ts";

test("a supervisor with most options on runs no regexp, through start, status, reload and stop", async () => {
  const port = freePort();
  const admin = freePort();
  const pidfile = join(tmpdir(), `sv-regexp-${port}.pid`);
  // The supervisor removes it on exit; only a failed run would leave it.
  await using _pidfile = { [Symbol.asyncDispose]: async () => rmSync(pidfile, { force: true }) };
  await using sup = startSupervisor(
    [
      process.execPath,
      "--preload",
      fixture("count-regexp.ts"),
      join(ROOT, "src", "cli.ts"),
      "run",
      fixture("pid-app.ts"),
      // no -w: -w auto reads the cgroup and the affinity mask
      ...["-p", String(port), "-H", "127.0.0.1"],
      ...["--graceful-timeout", "5", "--boot-timeout", "10.5", "--timeout", "20", "--keep-alive", "10"],
      ...["--max-body-size", "10M", "--max-requests", "1000", "--max-requests-jitter", "10"],
      ...["--max-memory", "512MiB", "--max-restarts", "5", "--shutdown-delay", "0"],
      ...["--env", "A=1", "--env", "B_2=x", "--pre-start", "true", "--access-log"],
      ...["--log-format", "json", "--log-level", "info", "--admin", `127.0.0.1:${admin}`],
      ...["--pidfile", pidfile],
    ],
    { raw: true, port, env: { WEB_CONCURRENCY: undefined, SUPERVISOR_WORKERS: undefined } },
  );
  await sup.waitForOutput(/ready: \d+ workers? listening/, 20_000);
  expect((await get(port, "/")).status).toBe(200);
  expect((await get(admin, "/metrics")).status).toBe(200);
  const status = Bun.spawnSync(
    [process.execPath, join(ROOT, "src", "cli.ts"), "status", "-p", String(port)],
    {
      env: { ...process.env, XDG_RUNTIME_DIR: sup.runtimeDir },
    },
  );
  expect(status.exitCode).toBe(0);
  process.kill(sup.pid, "SIGHUP");
  await sup.waitForOutput(/reload finished/, 20_000);
  process.kill(sup.pid, "SIGTERM");
  expect(await sup.exited).toBe(0);
  expect(existsSync(pidfile)).toBe(false);
  await waitFor(() => /regexps run by the supervisor: \d+/.exec(sup.stderr())?.[0], "the preload's count");
  expect(sup.stderr().slice(sup.stderr().indexOf("regexps run by the supervisor"))).toBe(
    "regexps run by the supervisor: 0\n",
  );
}, 60_000);
