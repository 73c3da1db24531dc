// Every bad input gets one clear line, its documented exit code, no stack trace, nothing left behind.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  asNobody,
  canRunAsNobody,
  fixture,
  freePort,
  nobodyEnv,
  reachableBinary,
  removeReachableBinary,
  runToExit,
} from "./helpers.ts";

afterAll(removeReachableBinary);

const app = fixture("pid-app.ts");

/** One line naming the problem, and no stack trace. */
function expectOneLine(stderr: string, pattern: RegExp) {
  const lines = stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(stderr).not.toMatch(/^\s+at /m);
}

describe("usage errors exit 2 with one line", () => {
  test.each([
    [["run", app, "-w", "0"], /-w\/--workers must be a whole number from 1 to 1024 or auto, got '0'/],
    [["run", app, "-w", "-1"], /-w\/--workers must be a whole number from 1 to 1024 or auto, got '-1'/],
    [["run", app, "-w", "abc"], /-w\/--workers must be a whole number .* got 'abc'/],
    [["run", app, "--workers=2.5"], /-w\/--workers must be a whole number .* got '2.5'/],
    [["run", app, "-p", "70000"], /-p\/--port must be a port number from 1 to 65535, got '70000'/],
    [["run", app, "-p", "0"], /-p\/--port must be a port number/],
    [["run", app, "--graceful-timeout", "soon"], /--graceful-timeout must be a number of seconds/],
    [["run", app, "--boot-timeout", "0"], /--boot-timeout must be a number of seconds, more than 0/],
    [["run", app, "--wokers", "2"], /unknown option '--wokers'/],
    [["run", app, "-x"], /unknown option '-x'/],
    [["run", app, "-1"], /unknown option '-1'/],
    [["run", app, "-p", "8999", "-w"], /option '-w' needs a value/],
    [["run", "does-not-exist.ts"], /app file not found: does-not-exist.ts/],
    [["run", "test"], /app entry is not a file: test/],
    [["run"], /missing the app to run/],
    [["run", app, "other.ts"], /unexpected argument 'other.ts': one app entry only/],
    [["serve", app], /unknown command 'serve'/],
    [["signal"], /missing NAME \(see --help\)/],
  ])("%p", async (args, pattern) => {
    const { code, stderr } = await runToExit(args as string[], { port: freePort() });
    expect(code).toBe(2);
    expectOneLine(stderr, pattern);
  });

  test.each([
    [
      { WEB_CONCURRENCY: "many" },
      /WEB_CONCURRENCY must be a whole number from 1 to 1024 or auto, got 'many'/,
    ],
    [{ PORT: "http" }, /PORT must be a port number from 1 to 65535, got 'http'/],
  ])("bad environment %p", async (env, pattern) => {
    const { code, stderr } = await runToExit(["run", app], { env: { ...env }, noPortFlag: true });
    expect(code).toBe(2);
    expectOneLine(stderr, pattern);
  });

  test("unreadable entry file: exit 2, one line (as root, the check runs as nobody)", async () => {
    // Root reads any file, so as root the supervisor runs as nobody (the compiled binary at a path
    // nobody can reach); as another user it runs as that user.
    const isRoot = process.getuid?.() === 0;
    if (isRoot && !canRunAsNobody) throw new Error("as root this test needs setpriv (util-linux)");
    const dir = mkdtempSync(join(tmpdir(), "sv-"));
    chmodSync(dir, 0o755);
    const file = join(dir, "app.ts");
    writeFileSync(file, "export default { fetch: () => new Response('x') }");
    chmodSync(file, 0);
    const { code, stderr } = await runToExit(
      isRoot ? [...asNobody, reachableBinary(), "run", file, "-p", String(freePort())] : ["run", file],
      isRoot ? { raw: true, cwd: dir, env: nobodyEnv } : {},
    );
    expect(code).toBe(2);
    expectOneLine(stderr, new RegExp(`app file is missing or not a readable file: ${file}`));
  });
});

describe("files checked before any worker starts: exit 2, one line", () => {
  const dir = mkdtempSync(join(tmpdir(), "sv-files-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const garbage = join(dir, "garbage.pem");
  writeFileSync(garbage, "not a certificate\n");

  test("--tls-cert/--tls-key that are not PEM", async () => {
    const { code, stdout, stderr } = await runToExit([
      "run",
      app,
      "--tls-cert",
      garbage,
      "--tls-key",
      garbage,
    ]);
    expect(code).toBe(2);
    expectOneLine(stderr, new RegExp(`^supervisor: --tls-cert ${garbage} is not a PEM certificate \\(`));
    expect(stdout).not.toMatch(/starting/);
  });

  test.skipIf(!Bun.which("openssl"))("a key that is not the certificate's", async () => {
    const make = (name: string) => {
      const made = Bun.spawnSync(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"].concat([
          "-subj",
          `/CN=${name}`,
          "-days",
          "1",
          "-keyout",
          join(dir, `${name}.key`),
          "-out",
          join(dir, `${name}.crt`),
        ]),
        { stderr: "pipe" },
      );
      if (made.exitCode !== 0) throw new Error(made.stderr.toString());
    };
    make("a");
    make("b");
    const bad = await runToExit(["run", app, "--tls-cert", join(dir, "a.crt"), "--tls-key", garbage]);
    expect(bad.code).toBe(2);
    expectOneLine(bad.stderr, /--tls-key .* is not an unencrypted PEM private key/);
    const other = await runToExit([
      "run",
      app,
      "--tls-cert",
      join(dir, "a.crt"),
      "--tls-key",
      join(dir, "b.key"),
    ]);
    expect(other.code).toBe(2);
    expectOneLine(
      other.stderr,
      /--tls-key .*b\.key does not belong to the certificate in --tls-cert .*a\.crt/,
    );
  });

  test("--watch=<missing dir>", async () => {
    const missing = join(dir, "no-such-dir");
    const { code, stdout, stderr } = await runToExit(["run", app, `--watch=${missing}`]);
    expect(code).toBe(2);
    expectOneLine(stderr, new RegExp(`^supervisor: --watch: directory not found: ${missing}$`));
    expect(stdout).not.toMatch(/starting/);
  });
});

describe("boot failures exit 3 and print the app's error once", () => {
  test("throw at import, 3 workers: the error appears once", async () => {
    const { code, stderr } = await runToExit(["run", fixture("throw-app.ts"), "-w", "3"]);
    expect(code).toBe(3);
    expect(stderr.match(/error: database URL is not set \(fixture\)/g)).toHaveLength(1);
    expect(stderr).toMatch(/worker failed to boot/);
  });

  test("syntax error", async () => {
    const { code, stderr } = await runToExit(["run", fixture("syntax-error-app.js"), "-w", "2"]);
    expect(code).toBe(3);
    expect(stderr).toMatch(/worker failed to boot/);
    expect(stderr.match(/syntax-error-app\.js/g)?.length).toBeGreaterThanOrEqual(1);
    expect(stderr.match(/worker failed to boot/g)).toHaveLength(1);
  });

  test("module without a handler", async () => {
    const { code, stderr } = await runToExit(["run", fixture("no-handler-app.ts"), "-w", "2"]);
    expect(code).toBe(3);
    expect(stderr).toMatch(
      /does not export a server: its default export is an object without fetch or routes \(keys: hello\)/,
    );
    expect(stderr.match(/does not export a server/g)).toHaveLength(1);
  });

  test("never ready within --boot-timeout", async () => {
    const { code, stderr } = await runToExit(["run", fixture("never-ready-app.ts"), "--boot-timeout", "0.5"]);
    expect(code).toBe(3);
    expect(stderr).toMatch(/did not become ready within 500 ms/);
  });

  test("port already taken by a server without reusePort", async () => {
    const port = freePort();
    const squatter = Bun.serve({ port, hostname: "0.0.0.0", fetch: () => new Response("squatter") });
    try {
      const { code, stderr } = await runToExit(["run", app, "-p", String(port)]);
      expect(code).toBe(3);
      expectOneLine(stderr, new RegExp(`port ${port} on 0.0.0.0 is already in use`));
    } finally {
      squatter.stop(true);
    }
  });

  test("port shared silently by a stale reusePort server is refused too", async () => {
    const port = freePort();
    const stale = Bun.serve({
      port,
      hostname: "0.0.0.0",
      reusePort: true,
      fetch: () => new Response("stale"),
    });
    try {
      const { code, stderr } = await runToExit(["run", app, "-p", String(port)]);
      expect(code).toBe(3);
      expectOneLine(stderr, /already in use/);
    } finally {
      stale.stop(true);
    }
  });
});

describe("help and version", () => {
  test("--version", async () => {
    const { code, stdout } = await runToExit(["--version"]);
    expect(code).toBe(0);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  test("run --help lists every option", async () => {
    const { code, stdout } = await runToExit(["run", "--help"]);
    expect(code).toBe(0);
    for (const flag of [
      "--workers",
      "--port",
      "--host",
      "--graceful-timeout",
      "--boot-timeout",
      "--timeout",
    ]) {
      expect(stdout).toContain(flag);
    }
    expect(stdout).not.toContain("\x1b[");
    // --keep-alive has no default of its own (it follows --timeout): none is shown, not "NaN"
    expect(stdout).toContain("--keep-alive");
    expect(stdout).not.toContain("NaN");
  });
});
