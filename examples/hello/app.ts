// The bundled example: a plain `export default { fetch }` app, plus a WebSocket echo at /ws.
// Run it with `npm start` (4 workers on port 3000), or `bun src/cli.ts run examples/hello/app.ts -w 4`.
import type { Server } from "bun";

export default {
  fetch(req: Request, server: Server<undefined>) {
    const url = new URL(req.url);
    if (url.pathname === "/ws" && server.upgrade(req)) return;
    return new Response(`Hello from worker ${process.env.SUPERVISOR_WORKER_ID} (pid ${process.pid})\n`);
  },
  websocket: {
    message(ws: Bun.ServerWebSocket<undefined>, message: string | Buffer) {
      ws.send(message);
    },
  },
};
