// `supervisor top`: a live view of a running supervisor, refreshed every second over its control
// socket: per worker slot its pid, state, uptime, req/s, p50/p99 latency (with --admin), RSS and
// restarts, and a totals line. `q` or Ctrl-C leaves. `--once` (and any stdout that is not a
// terminal) prints one plain frame, measured over one second, for scripts.

import type { ControlClient } from "../control/client.ts";
import { renderTop } from "../control/top-view.ts";
import type { Snapshot } from "../control/types.ts";
import { defineCommand } from "./argv.ts";
import { connectTo, type RawTargetArgs, targetArgs } from "./target.ts";

/** How often the view is redrawn, and the window rates are measured over. */
const REFRESH_MS = 1_000;

export const topCommand = defineCommand({
  meta: { name: "top", description: "A live view of the workers: req/s, latency, memory (q to quit)" },
  args: {
    ...targetArgs,
    once: { type: "boolean", description: "Print one plain frame (rates over 1 s) and exit, for scripts" },
  },
  async run({ args }) {
    const client = await connectTo(args as RawTargetArgs);
    if (args.once || !process.stdout.isTTY) {
      const [before, beforeAt] = await sample(client);
      await Bun.sleep(REFRESH_MS);
      const [now, nowAt] = await sample(client);
      process.stdout.write(renderTop(before, now, nowAt - beforeAt));
      return 0;
    }
    return live(client);
  },
});

// --- internal ---

async function sample(client: ControlClient): Promise<[Snapshot, number]> {
  const snapshot = await client.status();
  return [snapshot, performance.now()];
}

/** The full-screen view: the terminal's alternate screen, redrawn in place; keys read raw. */
async function live(client: ControlClient): Promise<number> {
  const out = process.stdout;
  let done: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => {
    done = resolve;
  });
  const quit = (code: number) => {
    clearInterval(timer);
    process.stdin.setRawMode?.(false);
    process.stdin.pause();
    out.write("\x1b[?25h\x1b[?1049l"); // cursor back, main screen back
    done(code);
  };
  process.stdin.setRawMode?.(true);
  process.stdin.resume();
  process.stdin.on("data", (key: Buffer) => {
    const k = key.toString();
    if (k === "q" || k === "Q" || k === "\x03") quit(0);
  });
  process.on("SIGINT", () => quit(0));
  out.write("\x1b[?1049h\x1b[?25l"); // alternate screen, no cursor
  let last = await sample(client).catch(() => undefined);
  out.write(`\x1b[H\x1b[2Jmeasuring… (q to quit)\n`);
  const timer = setInterval(async () => {
    try {
      const now = await sample(client);
      if (last) out.write(`\x1b[H\x1b[2J${renderTop(last[0], now[0], now[1] - last[1])}\n(q to quit)`);
      last = now;
    } catch (error) {
      quit(1);
      console.error(`supervisor: ${error instanceof Error ? error.message : String(error)}`);
    }
  }, REFRESH_MS);
  return finished;
}
