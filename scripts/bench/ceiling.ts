// The ceiling: N plain `bun ceiling-worker.ts` processes sharing the port with reusePort; this launcher is
// never in the data path. It respawns a process that dies (at once, on `exited`) and prints
// `ready: N processes listening in X ms` once all N said they listen (IPC), the supervisor's
// measure of readiness. usage: bun ceiling.ts N   (PORT, HOST from the environment)

const n = Number(process.argv[2] ?? 2);
const app = `${import.meta.dir}/ceiling-worker.ts`;
const started = performance.now();
const procs = new Set<ReturnType<typeof Bun.spawn>>();
let listening = 0;
let stopping = false;

function start(): void {
  const proc = Bun.spawn([process.execPath, app], {
    stdio: ["ignore", "inherit", "inherit"],
    ipc: () => {
      if (++listening === n)
        console.log(`ready: ${n} processes listening in ${Math.round(performance.now() - started)} ms`);
    },
  });
  procs.add(proc);
  void proc.exited.then(() => {
    procs.delete(proc);
    if (!stopping) start();
  });
}

function stop(): void {
  stopping = true;
  for (const proc of procs) proc.kill();
  Promise.all([...procs].map((p) => p.exited)).then(() => process.exit(0));
}

for (let i = 0; i < n; i++) start();
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
