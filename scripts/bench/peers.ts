// The configurations scripts/bench.ts compares: the ceiling (N plain Bun.serve reusePort processes),
// the supervisor, and the peers users compare it with (node cluster, PM2 cluster, gunicorn +
// UvicornWorker, uvicorn --workers), each with how to start it and why it may be missing here.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { benchDir, bun, HOST, workDir } from "./options.ts";

export interface Config {
  name: string;
  /** Why it cannot run here, or undefined. */
  missing(): string | undefined;
  command(n: number, port: number): string[];
  env?(n: number, port: number): Record<string, string>;
  /** The manager's own "all workers ready" line, when it prints one. */
  readyLine?: RegExp;
  /** A zero-downtime reload signal, when it has one; and the line that says a reload finished. */
  reload?: { signal: NodeJS.Signals; doneLine?: RegExp };
}

/** Debian's python3 first: gunicorn, uvicorn and FastAPI come from its packages (a pyenv shim lacks them). */
const python = ["/usr/bin/python3", Bun.which("python3")].find((p) => p && existsSync(p)) ?? "python3";

/** Every configuration; `supervisorBin` is the binary measured (prepareSupervisor in ./launch.ts). */
export function peerConfigs(supervisorBin: string): Config[] {
  return [
    {
      name: "ceiling",
      missing: () => undefined,
      command: (n) => [bun, join(benchDir, "ceiling.ts"), String(n)],
      readyLine: /^ready: \d+ processes listening/,
    },
    {
      name: "supervisor",
      missing: () => undefined,
      command: (n, port) => [
        supervisorBin,
        "run",
        join(benchDir, "hello.ts"),
        "-w",
        String(n),
        "-p",
        String(port),
        "-H",
        HOST,
      ],
      readyLine: /\bready: \d+ workers? listening on /,
      reload: { signal: "SIGHUP", doneLine: /\breload finished: / },
    },
    {
      name: "node-cluster",
      missing: () => (Bun.which("node") ? undefined : "node is not installed"),
      command: (n) => ["node", join(benchDir, "node-cluster.cjs"), String(n)],
    },
    {
      name: "pm2-cluster",
      missing: () =>
        Bun.which("pm2-runtime") ? undefined : "pm2-runtime is not installed (npm install -g pm2)",
      command: () => ["pm2-runtime", "start", join(benchDir, "pm2.config.cjs")],
      env: (n) => ({ N: String(n), PM2_HOME: join(workDir, "pm2-home") }),
    },
    {
      name: "gunicorn-uvicorn",
      missing: () => pythonMissing("gunicorn"),
      command: (n, port) => [
        python,
        "-m",
        "gunicorn",
        "fastapi_app:app",
        "--chdir",
        benchDir,
        "-w",
        String(n),
        "-k",
        "uvicorn.workers.UvicornWorker",
        "-b",
        `${HOST}:${port}`,
      ],
      reload: { signal: "SIGHUP" },
    },
    {
      name: "uvicorn-workers",
      missing: () => pythonMissing("uvicorn"),
      command: (n, port) => [
        python,
        "-m",
        "uvicorn",
        "fastapi_app:app",
        "--app-dir",
        benchDir,
        "--workers",
        String(n),
        "--host",
        HOST,
        "--port",
        String(port),
        "--log-level",
        "warning",
      ],
    },
  ];
}

function pythonMissing(module: string): string | undefined {
  const probe = Bun.spawnSync([python, "-c", `import ${module}, uvicorn, fastapi`], { stderr: "pipe" });
  return probe.exitCode === 0
    ? undefined
    : `python3 cannot import ${module}, uvicorn and fastapi (apt-get install gunicorn python3-uvicorn python3-fastapi python3-uvloop python3-httptools)`;
}
