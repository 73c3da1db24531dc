// --watch: a rolling reload when a file changes under the app's directory (or the directories given),
// node_modules and dot-directories excluded. A burst of saves reloads once (debounced). A change that
// breaks the app keeps the old workers serving (the reload fails, as with HUP); the next good change
// recovers.

import { type FSWatcher, watch } from "node:fs";
import { dirname, resolve, sep } from "node:path";
import { ExitCode, SupervisorError } from "../core/exit-codes.ts";
import { isDigits } from "../core/text.ts";
import type { Logger } from "./log.ts";

/** Saves within this long of each other are one change (editors write, rename and touch in bursts). */
export const WATCH_DEBOUNCE_MS = 150;

export function watchForChanges(
  entry: string,
  dirs: string[],
  logger: Logger,
  onChange: (file: string) => void,
): { close(): void } {
  const roots = dirs.map((d) => (d === "." ? dirname(entry) : resolve(d)));
  let timer: Timer | undefined;
  let lastFile = "";
  const watchers: FSWatcher[] = [];
  const close = () => {
    clearTimeout(timer);
    for (const w of watchers) w.close();
  };
  for (const root of roots) {
    let watcher: FSWatcher;
    try {
      watcher = watch(root, { recursive: true }, (_event, name) => {
        if (!name || ignored(String(name))) return;
        lastFile = `${root}${sep}${name}`;
        clearTimeout(timer);
        timer = setTimeout(() => {
          logger.info(`change in ${lastFile}: reloading`);
          onChange(lastFile);
        }, WATCH_DEBOUNCE_MS);
      });
    } catch (error) {
      close();
      const code = (error as NodeJS.ErrnoException).code ?? String(error);
      throw new SupervisorError(`--watch: cannot watch ${root}: ${code}`, ExitCode.RUNTIME);
    }
    // A watched directory removed later costs the watching, not the supervisor.
    watcher.on("error", (error) => logger.warn(`--watch: ${root}: ${error.message}; no longer watched`));
    watchers.push(watcher);
  }
  logger.info(`watching ${roots.join(", ")} for changes (node_modules excluded)`);
  return { close };
}

/** node_modules, .git and other dot-directories, editor swap and backup files (a changed .env reloads). */
export function ignored(relativePath: string): boolean {
  const parts = relativePath.replaceAll("\\", "/").split("/");
  const file = parts.at(-1) ?? "";
  return (
    parts.includes("node_modules") ||
    parts.slice(0, -1).some((p) => p.startsWith(".") && p.length > 1) ||
    file.endsWith("~") ||
    file.endsWith(".swp") ||
    file.endsWith(".swx") ||
    isDigits(file) // vim's write test file "4913"
  );
}
