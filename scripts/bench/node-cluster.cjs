// Node's cluster module with N workers: the primary accepts and hands connections round-robin.
// usage: node node-cluster.cjs N
const cluster = require("node:cluster");

if (cluster.isPrimary) {
  const n = Number(process.argv[2] ?? 2);
  for (let i = 0; i < n; i++) cluster.fork();
  // Replace a worker that dies, as the other managers do.
  cluster.on("exit", () => cluster.fork());
  process.on("SIGTERM", () => {
    cluster.removeAllListeners("exit");
    for (const w of Object.values(cluster.workers)) w.kill();
    process.exit(0);
  });
} else {
  require("./node-app.cjs");
}
