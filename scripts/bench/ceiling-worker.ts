// One process of the ceiling: imports the same app as the supervisor's workers and serves it with
// reusePort on PORT/HOST, then tells its launcher (ceiling.ts) over IPC that it listens.
import app from "./hello.ts";

Bun.serve({
  ...app,
  port: Number(process.env.PORT ?? 3000),
  hostname: process.env.HOST ?? "0.0.0.0",
  reusePort: true,
});
process.send?.("ready");
