// The plain-Bun floor of a process manager: N `bun ceiling-worker.ts` on one port (reusePort), each
// respawned when it exits; no IPC, no logging. usage: bun launcher.ts N (PORT, HOST from the environment)
// LAUNCHER_WORKER (JSON: cmd, env, channel) starts that command instead, with a socket pair on fd 3
// when `channel`: scripts/bench/memory.ts's launch part runs the supervisor's own worker command this
// way, to tell the workers' share of the launch from the parent's.
const n = Number(process.argv[2] ?? 2);
const app = `${import.meta.dir}/ceiling-worker.ts`;
const worker = process.env.LAUNCHER_WORKER ? JSON.parse(process.env.LAUNCHER_WORKER) : undefined;
if (worker) delete process.env.LAUNCHER_WORKER; // kept out of the workers' environment
const procs = new Set<Bun.Subprocess>();
const start = (): void => {
  const proc = worker
    ? Bun.spawn(worker.cmd, {
        env: { ...process.env, ...worker.env },
        stdio: ["ignore", "inherit", "inherit", ...(worker.channel ? (["pipe"] as const) : [])],
      })
    : Bun.spawn([process.execPath, app], { stdio: ["ignore", "inherit", "inherit"] });
  procs.add(proc);
  void proc.exited.then(() => procs.delete(proc) && !stopping && start());
};
let stopping = false;
process.on("SIGTERM", () => {
  stopping = true;
  for (const proc of procs) proc.kill();
  void Promise.all([...procs].map((p) => p.exited)).then(() => process.exit(0));
});
for (let i = 0; i < n; i++) start();
