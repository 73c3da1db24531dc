// `bun scripts/systemd-check.ts [--rootfs dir]`: README's systemd unit under a real systemd.
//
// Builds (once, cached) a Debian root filesystem with systemd (`debootstrap --variant=minbase`, from
// Debian's mirror), puts dist/supervisor, an app and README's unit in it, and boots it with
// `podman run --systemd=always` (systemd as the container's PID 1). Then, against the real systemd:
//   1. start: the unit is Type=notify; `systemctl start` returns once READY=1 came; StatusText shows
//      the STATUS= line;
//   2. `systemctl reload` under load (4 keep-alive clients): 0 failed, every worker replaced; and
//      with a broken app file: `systemctl reload` fails, the old workers keep serving;
//   3. `systemctl stop` with a 2 s request in flight: the request gets 200, the unit ends "success";
//   4. an optional WatchdogSec=2 (TimeoutAbortSec=2): a live supervisor pings in time; a frozen one (SIGSTOP) is killed
//      and restarted by systemd;
//   5. a usage error (exit 2) is not restarted;
//   6. a crash loop (the same unit running an app that crashes right after it is ready, with
//      --max-restarts 3): what systemd does with README's Restart settings, and with its defaults.
// Needs root and podman (+ runc; see docs/DEPLOYMENT.md); runs in a private network namespace with
// net.ipv4.tcp_migrate_req=1 (the container shares it: --network host). Prints a JSON line last.

import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { waitFor as waitUntil } from "../test/helpers.ts";

const ROOT = resolve(import.meta.dir, "..");
const args = process.argv.slice(2);
const rootfsFlag = args.indexOf("--rootfs");
const ROOTFS = resolve(
  rootfsFlag === -1 ? join(ROOT, "dist", "debian-systemd") : (args[rootfsFlag + 1] ?? "."),
);
const NAME = "supervisor-systemd-check";
const PORT = 3000;

const run = (cmd: string[], what = cmd.join(" ")) => {
  const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0)
    throw new Error(`${what} failed (${r.exitCode}): ${r.stderr.toString()}${r.stdout.toString()}`);
  return r.stdout.toString().trim();
};
const inside = (...cmd: string[]) => run(["podman", "exec", NAME, ...cmd]);
const show = (unit: string, props: string) =>
  Object.fromEntries(
    inside("systemctl", "show", unit, "-p", props)
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
/** The supervisor's children (its workers) inside the container, from /proc. */
const workerPids = () => {
  const main = show("app", "MainPID").MainPID;
  return inside("cat", `/proc/${main}/task/${main}/children`).split(/\s+/).filter(Boolean).map(Number);
};
const log = (line: string) => console.log(`systemd-check: ${line}`);

/** Each check runs commands in the container: poll every 100 ms, for up to 30 s by default. */
const waitFor = <T>(check: () => T | Promise<T>, what: string, ms = 30_000) =>
  waitUntil(check, what, ms, 100);

/** README's unit: the ```ini block that starts with the unit's path comment. */
function readmeUnit(): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const unit = /```ini\n# \/etc\/systemd\/system\/app\.service\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!unit) throw new Error("README has no app.service block");
  return unit;
}

function buildRootfs(): void {
  if (!existsSync(join(ROOTFS, "usr/lib/systemd/systemd"))) {
    log(`debootstrap --variant=minbase bookworm ${ROOTFS} (once; a few minutes)`);
    run([
      "debootstrap",
      "--variant=minbase",
      "--include=systemd,systemd-sysv,dbus",
      "bookworm",
      ROOTFS,
      "http://deb.debian.org/debian",
    ]);
  }
  if (run(["chroot", ROOTFS, "sh", "-c", "id -u app || true"]) === "") {
    run(["chroot", ROOTFS, "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "app"]);
  }
  mkdirSync(join(ROOTFS, "srv/app"), { recursive: true });
  cpSync(join(ROOT, "dist", "supervisor"), join(ROOTFS, "usr/local/bin/supervisor"));
  writeFileSync(
    join(ROOTFS, "srv/app/server.ts"),
    `export default {
  async fetch(req: Request) {
    const url = new URL(req.url);
    if (url.pathname === "/slow") {
      console.log("slow request started in pid " + process.pid);
      await Bun.sleep(Number(url.searchParams.get("ms") ?? 1000));
    }
    return new Response("pid " + process.pid + "\\n");
  },
};
`,
  );
  // Ready, then dead 50 ms later: early deaths, so the supervisor gives up with exit 4.
  writeFileSync(
    join(ROOTFS, "srv/app/crash.ts"),
    `setTimeout(() => process.exit(7), 50);\nexport default { fetch: () => new Response("up") };\n`,
  );
  const unit = readmeUnit();
  const units = join(ROOTFS, "etc/systemd/system");
  writeFileSync(join(units, "app.service"), unit);
  // The crash loop: README's unit with the crashing app and a short --max-restarts; and once more
  // with systemd's own defaults (no RestartSec, no StartLimit settings) for comparison.
  const crash = unit.replace(/ExecStart=(\S+) run server\.ts/, "ExecStart=$1 run crash.ts --max-restarts 3");
  if (crash === unit) throw new Error("README's ExecStart is not `... run server.ts ...`");
  writeFileSync(
    join(units, "crash.service"),
    crash.replaceAll("/run/app/", "/run/crash/").replace("RuntimeDirectory=app", "RuntimeDirectory=crash"),
  );
  const defaults = crash
    .split("\n")
    .filter((l) => !/^(RestartSec|StartLimit\w+|RestartPreventExitStatus)=/.test(l))
    .join("\n");
  writeFileSync(
    join(units, "crash-defaults.service"),
    defaults
      .replaceAll("/run/app/", "/run/crash-defaults/")
      .replace("RuntimeDirectory=app", "RuntimeDirectory=crash-defaults"),
  );
  mkdirSync(join(units, "multi-user.target.wants"), { recursive: true });
}

// --- a private network namespace, where the container's --network host is ours ---
if (process.env.SYSTEMD_CHECK_NETNS !== "1") {
  if (process.getuid?.() !== 0) {
    console.error("systemd-check: needs root (podman, debootstrap, a network namespace)");
    process.exit(2);
  }
  // The network is needed for debootstrap, so the root filesystem is made out here.
  run([process.execPath, join(ROOT, "scripts", "build.ts")], "bun scripts/build.ts");
  buildRootfs();
  const self = Bun.spawnSync(
    [
      "unshare",
      "--net",
      "sh",
      "-c",
      'ip link set lo up && sysctl -qw net.ipv4.tcp_migrate_req=1 && exec "$@"',
      "sh",
      process.execPath,
      import.meta.path,
      ...args,
    ],
    { env: { ...process.env, SYSTEMD_CHECK_NETNS: "1" }, stdio: ["inherit", "inherit", "inherit"] },
  );
  process.exit(self.exitCode ?? 1);
}

const result: Record<string, unknown> = {};
try {
  Bun.spawnSync(["podman", "rm", "-f", "-t", "0", NAME], { stdout: "ignore", stderr: "ignore" });
  run([
    "podman",
    "run",
    "-d",
    "--name",
    NAME,
    "--systemd=always",
    "--network",
    "host",
    "--rootfs",
    `${ROOTFS}:O`,
    "/sbin/init",
  ]);
  await waitFor(
    () =>
      /running|degraded/.test(
        Bun.spawnSync(["podman", "exec", NAME, "systemctl", "is-system-running"]).stdout.toString(),
      ),
    "systemd to boot",
  );
  result.systemd = inside("systemctl", "--version").split("\n")[0];

  // 1. start (Type=notify: returns once READY=1 came)
  let started = performance.now();
  inside("systemctl", "start", "app");
  result.start = {
    ms: Math.round(performance.now() - started),
    ...show("app", "ActiveState,SubState,Type,NotifyAccess,StatusText,MainPID"),
    answer: await (await fetch(`http://127.0.0.1:${PORT}/`)).text(),
  };
  log(`started: ${JSON.stringify(result.start)}`);

  // 2. reload under load
  const answered = new Set<string>(); // every worker that answered during the run
  const failures: string[] = [];
  let ok = 0;
  let failed = 0;
  let loading = true;
  const client = async () => {
    while (loading) {
      try {
        const res = await fetch(`http://127.0.0.1:${PORT}/`, { signal: AbortSignal.timeout(5_000) });
        const body = await res.text();
        if (res.status !== 200) throw new Error(`status ${res.status}`);
        ok++;
        answered.add(body.trim());
      } catch (error) {
        failed++;
        if (failures.length < 5) failures.push(String(error));
      }
    }
  };
  const clients = Array.from({ length: 4 }, client);
  await Bun.sleep(300); // let the clients reach full speed first
  const workersBefore = workerPids();
  started = performance.now();
  const reload = Bun.spawnSync(["podman", "exec", NAME, "systemctl", "reload", "app"], { stderr: "pipe" });
  const reloadMs = Math.round(performance.now() - started);
  // The old workers drain after their replacements are ready; keep the load on until they are gone.
  await waitFor(() => workerPids().length === workersBefore.length, "the old workers to exit");
  loading = false;
  await Promise.all(clients);
  result.reload = {
    exitCode: reload.exitCode,
    ms: reloadMs,
    ok,
    failed,
    errors: failures,
    workersBefore,
    workersAfter: workerPids(),
    answeredBy: answered.size,
    ...show("app", "ActiveState,StatusText"),
  };
  log(`reload: ${JSON.stringify(result.reload)}`);

  // 2b. a broken deploy: `systemctl reload` fails, the old workers keep serving
  const server = join(ROOTFS, "srv/app/server.ts");
  const good = readFileSync(server, "utf8");
  inside("sh", "-c", "echo 'export default { fetch( { oops };' > /srv/app/server.ts");
  const broken = Bun.spawnSync(["podman", "exec", NAME, "systemctl", "reload", "app"], { stderr: "pipe" });
  inside("sh", "-c", `cat > /srv/app/server.ts <<'EOF'\n${good}EOF`);
  result.brokenReload = {
    exitCode: broken.exitCode,
    ...show("app", "ActiveState,StatusText"),
    stillServes: (await fetch(`http://127.0.0.1:${PORT}/`)).status,
    journal: /reload failed, keeping .*/.exec(
      inside("journalctl", "-u", "app", "--no-pager", "-o", "cat"),
    )?.[0],
  };
  log(`broken reload: ${JSON.stringify(result.brokenReload)}`);

  // 3. stop with a request in flight
  const slow = fetch(`http://127.0.0.1:${PORT}/slow?ms=2000`).then(async (r) => ({
    status: r.status,
    body: await r.text(),
  }));
  await waitFor(
    () => inside("journalctl", "-u", "app", "--no-pager").includes("slow request started"),
    "the slow request",
  );
  started = performance.now();
  inside("systemctl", "stop", "app");
  result.stop = {
    ms: Math.round(performance.now() - started),
    request: (await slow).status,
    ...show("app", "ActiveState,Result,ExecMainStatus"),
  };
  log(`stop: ${JSON.stringify(result.stop)}`);

  // 4. the watchdog (an optional WatchdogSec=): pings keep a live supervisor running; a frozen one
  // (SIGSTOP) is killed by systemd and restarted
  inside(
    "sh",
    "-c",
    "mkdir -p /run/systemd/system/app.service.d && printf '[Service]\\nWatchdogSec=2\\nTimeoutAbortSec=2\\n' > /run/systemd/system/app.service.d/watchdog.conf",
  );
  inside("systemctl", "daemon-reload");
  inside("systemctl", "start", "app");
  const watched = show("app", "MainPID").MainPID;
  await Bun.sleep(5_000); // 2.5 watchdog periods: a missing ping would have killed it by now
  const alive = show("app", "ActiveState,MainPID,WatchdogUSec");
  inside("sh", "-c", `kill -STOP ${watched}`); // the shell's kill: minbase has no procps
  await waitFor(
    () => /[Ww]atchdog timeout/.test(inside("journalctl", "-u", "app", "--no-pager")),
    "the watchdog timeout",
    15_000,
  );
  const frozenAt = performance.now();
  const restarted = await waitFor(
    () => {
      const now = show("app", "ActiveState,MainPID");
      return now.ActiveState === "active" && now.MainPID !== watched && now.MainPID !== "0" && now;
    },
    "the restart after the watchdog timeout",
    90_000,
  );
  const journal = inside("journalctl", "-u", "app", "--no-pager", "-o", "cat");
  result.watchdog = {
    bunCrashReport: journal.includes("Bun has crashed"),
    after5s: alive,
    frozenPid: watched,
    restarted,
    restartedAfterMs: Math.round(performance.now() - frozenAt),
  };
  inside("rm", "/run/systemd/system/app.service.d/watchdog.conf");
  inside("systemctl", "daemon-reload");
  inside("systemctl", "stop", "app");
  log(`watchdog: ${JSON.stringify(result.watchdog)}`);

  // 5. a usage error (exit 2: here an unknown flag) is not restarted (RestartPreventExitStatus=2)
  inside(
    "sh",
    "-c",
    "mkdir -p /run/systemd/system/app.service.d && printf '[Service]\\nExecStart=\\nExecStart=/usr/local/bin/supervisor run server.ts --no-such-flag\\n' > /run/systemd/system/app.service.d/usage.conf",
  );
  inside("systemctl", "daemon-reload");
  Bun.spawnSync(["podman", "exec", NAME, "systemctl", "start", "app"], {
    stdout: "ignore",
    stderr: "ignore",
  });
  await Bun.sleep(7_000); // longer than RestartSec=5: a restart would have happened by now
  result.usageError = show("app", "ActiveState,Result,NRestarts,ExecMainStatus");
  inside("rm", "/run/systemd/system/app.service.d/usage.conf");
  inside("systemctl", "daemon-reload");
  Bun.spawnSync(["podman", "exec", NAME, "systemctl", "reset-failed", "app"]);
  log(`usage error: ${JSON.stringify(result.usageError)}`);

  // 6. crash loops: README's settings, then systemd's defaults
  for (const unit of ["crash", "crash-defaults"]) {
    started = performance.now();
    Bun.spawnSync(["podman", "exec", NAME, "systemctl", "start", unit], {
      stdout: "ignore",
      stderr: "ignore",
    });
    const watchMs = 20_000;
    await Bun.sleep(watchMs); // observing what systemd does over time is the point here
    const state = show(unit, "ActiveState,SubState,Result,NRestarts,ExecMainStatus");
    const journal = inside("journalctl", "-u", unit, "--no-pager", "-o", "cat");
    result[unit] = {
      afterMs: watchMs,
      ...state,
      gaveUp: /Start request repeated too quickly/.test(journal),
      supervisorExit4: /status=4/.test(journal),
    };
    inside("systemctl", "stop", unit);
    Bun.spawnSync(["podman", "exec", NAME, "systemctl", "reset-failed", unit]);
    log(`${unit}: ${JSON.stringify(result[unit])}`);
  }
} finally {
  Bun.spawnSync(["podman", "rm", "-f", "-t", "0", NAME], { stdout: "ignore", stderr: "ignore" });
}
console.log(JSON.stringify(result));
