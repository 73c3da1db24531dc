// Preload for scripts/bench/memory.ts: what the worker's node:http hook loads in a Bun app.
require("node:http");
