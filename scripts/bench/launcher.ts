// The plain-Bun floor of a process manager: N `bun ceiling-worker.ts` on one port (reusePort), each
// respawned when it exits; no IPC, no logging. usage: bun launcher.ts N (PORT, HOST from the environment)
const n = Number(process.argv[2] ?? 2);
const app = `${import.meta.dir}/ceiling-worker.ts`;
const procs = new Set<Bun.Subprocess>();
const start = (): void => {
  const proc = Bun.spawn([process.execPath, app], { stdio: ["ignore", "inherit", "inherit"] });
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
