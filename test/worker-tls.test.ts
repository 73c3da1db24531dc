// HTTPS (issue 4): config.tls (--tls-cert/--tls-key) goes to the worker's Bun.serve and wins over the
// app's own; an app's own `tls` export keeps working without it. Certificates are made here with openssl.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { fixture, get } from "./helpers.ts";
import { startWorkers } from "./worker-harness.ts";

const openssl = Bun.which("openssl");
let dir = "";
const cert = (cn: string) => ({ cert: join(dir, `${cn}.crt`), key: join(dir, `${cn}.key`) });

beforeAll(() => {
  if (!openssl) return;
  dir = mkdtempSync(join(tmpdir(), "supervisor-tls-"));
  for (const cn of ["supervisor", "app"]) {
    const { cert: crt, key } = cert(cn);
    const made = Bun.spawnSync(
      [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${cn}`, "-days", "1"].concat([
        "-keyout",
        key,
        "-out",
        crt,
      ]),
      { stderr: "pipe" },
    );
    if (made.exitCode !== 0) throw new Error(`openssl failed: ${made.stderr.toString()}`);
  }
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** GET over HTTPS, trusting the self-signed certificate. */
async function getTls(port: number, path = "/"): Promise<{ status: number; body: string }> {
  const res = await fetch(`https://127.0.0.1:${port}${path}`, {
    headers: { connection: "close" },
    tls: { rejectUnauthorized: false },
    signal: AbortSignal.timeout(3_000),
  });
  return { status: res.status, body: await res.text() };
}

/** The common name of the certificate the server presents. */
function servedCommonName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: false }, () => {
      const cn = socket.getPeerCertificate().subject?.CN;
      socket.destroy();
      resolve(String(cn));
    });
    socket.on("error", reject);
  });
}

describe.skipIf(!openssl)("TLS", () => {
  test("config.tls: an exported app is served over HTTPS only, with that certificate", async () => {
    await using w = startWorkers(fixture("pid-app.ts"), { workers: 2, config: { tls: cert("supervisor") } });
    await w.ready();
    expect(await getTls(w.port)).toMatchObject({ status: 200, body: expect.stringMatching(/^pid \d+ slot/) });
    expect(await servedCommonName(w.port)).toBe("supervisor");
    await expect(get(w.port)).rejects.toThrow();
  });

  test("config.tls: an app that starts its own server (Bun.serve) is served over HTTPS", async () => {
    await using w = startWorkers(fixture("self-serving/bun-serve.ts"), {
      config: { tls: cert("supervisor") },
    });
    await w.ready();
    expect((await getTls(w.port)).body).toMatch(/^bun-serve pid \d+ port \d+/);
  });

  test("an app's own tls export works without config.tls", async () => {
    const own = cert("app");
    await using w = startWorkers(fixture("self-serving/tls-export.ts"), {
      env: { APP_TLS_CERT: own.cert, APP_TLS_KEY: own.key },
    });
    await w.ready();
    expect((await getTls(w.port)).body).toMatch(/^tls pid \d+ https:/);
    expect(await servedCommonName(w.port)).toBe("app");
  });

  test("config.tls wins over the app's own tls export", async () => {
    const own = cert("app");
    await using w = startWorkers(fixture("self-serving/tls-export.ts"), {
      env: { APP_TLS_CERT: own.cert, APP_TLS_KEY: own.key },
      config: { tls: cert("supervisor") },
    });
    await w.ready();
    expect(await servedCommonName(w.port)).toBe("supervisor");
  });

  test("an unreadable key file is a boot error that names it, exit 3", async () => {
    const key = join(dir, "unreadable.key");
    await Bun.write(key, "secret");
    chmodSync(key, 0);
    const missing = process.getuid?.() === 0 ? join(dir, "missing.key") : key; // root reads mode 0 files
    await using w = startWorkers(fixture("pid-app.ts"), {
      config: { tls: { cert: cert("supervisor").cert, key: missing } },
    });
    const [worker] = w.workers;
    expect(await worker?.exited).toBe(3);
    const error = worker?.messages.find((m) => m.type === "boot-error");
    expect(error && "message" in error ? error.message : "").toContain(
      `cannot read the TLS key file ${missing}`,
    );
  });
});
