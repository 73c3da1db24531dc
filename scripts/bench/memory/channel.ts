// Preload for scripts/bench/memory.ts: what the worker's channel and heartbeat use — a pending read
// of fd 3 (the supervisor's end-of-file), one JSON line written to it, and the beat file mapped.
const reader = Bun.file(3).stream().getReader();
void reader.read();
await Bun.write(Bun.file(3), `${JSON.stringify({ type: "ready" })}\n`);
const beat = new Float64Array(Bun.mmap(process.env.BEAT_FILE ?? "").buffer);
beat[0] = 1;
