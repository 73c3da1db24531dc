// Preload for scripts/bench/memory.ts: what the worker's channel and heartbeat use — a pending read
// of fd 3 (the supervisor's end-of-file), one JSON line written to it, and one beat file write.
const reader = Bun.file(3).stream().getReader();
void reader.read();
const sink = Bun.file(3).writer();
sink.write(`${JSON.stringify({ type: "ready" })}\n`);
await sink.flush();
await Bun.write(process.env.BEAT_FILE ?? "", "1 0\n");
