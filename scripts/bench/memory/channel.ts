// Preload for scripts/bench/memory.ts: what the worker's channel and heartbeat use — fd 3 (a socket
// pair) opened as a Bun socket, whose end is the supervisor's end-of-file, one JSON line written to
// it, and one beat file write.
const socket = await Bun.connect({
  fd: 3,
  socket: { data() {}, end() {}, close() {} },
} as unknown as import("bun").UnixSocketOptions<undefined>);
socket.write(`${JSON.stringify({ type: "ready" })}\n`);
await Bun.write(process.env.BEAT_FILE ?? "", "1 0\n");
