// Preloaded by bunfig.toml for every `bun test`: the suite's per-test timeout, so a bare `bun test`
// (or `bun test test/reload.test.ts`) runs the way `npm test` does. bunfig's own [test] timeout is
// ignored (oven-sh/bun#7789), and a scenario test cut off at bun's default 5 s leaves the supervisors
// its fixture script started running.
import { setDefaultTimeout } from "bun:test";

setDefaultTimeout(60_000);
