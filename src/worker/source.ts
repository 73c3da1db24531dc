// The worker's code as JavaScript, made once when the supervisor is bundled (a Bun macro), so no
// TypeScript is transpiled at start-up. Imported with `with { type: "macro" }` from host.ts.
import { readFileSync } from "node:fs";

export function workerJavaScript(): string {
  const source = readFileSync(new URL("./main.ts", import.meta.url), "utf8");
  return new Bun.Transpiler({ loader: "ts" }).transformSync(source);
}
