// Loading the user's module and telling what it exports, with words for what cannot be served.

import { bootFailed, errorText } from "./context.ts";

export type Module = Record<string, unknown>;

/** At most this much of an import error is shown (a broken file's error may quote much of it). */
const MAX_ERROR_CHARS = 2_000;

export async function importApp(entry: string): Promise<Module> {
  try {
    return await import(entry);
  } catch (error) {
    return bootFailed(printable(errorText(error)));
  }
}

/** The export to serve: `default { fetch }`, `default { routes }` or an app instance with `fetch` (Hono, Elysia). */
export function serverExport(mod: Module): Module | undefined {
  const app = mod.default as Module | undefined;
  if (app && (typeof app === "object" || typeof app === "function")) {
    if (typeof app.fetch === "function" || isRoutesTable(app.routes)) return app;
  }
  return undefined;
}

export function noServer(entry: string, mod: Module, waitedMs: number): string {
  const found =
    "default" in mod
      ? `its default export is ${describe(mod.default)}`
      : `it has no default export and started no server within ${Math.round(waitedMs / 1000)} s`;
  return `${entry} does not export a server: ${found}. Export \`default { fetch(req) { ... } }\` (Bun's convention) or \`default app\` (a Hono or Elysia app), or start a server while it loads (Bun.serve(), app.listen()).`;
}

// --- internal ---

function isRoutesTable(routes: unknown): boolean {
  return !!routes && typeof routes === "object" && !Array.isArray(routes) && Object.keys(routes).length > 0;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (value instanceof Promise) {
    return "a Promise (an app made by an async function and not awaited): write `export default await createApp()`";
  }
  if (typeof value === "object") {
    const app = value as Module;
    if ("fetch" in app) return `an object whose fetch is ${article(typeof app.fetch)}, not a function`;
    if ("routes" in app) return "an object whose routes is not a table of paths to handlers";
    return `an object without fetch or routes (keys: ${Object.keys(value).join(", ") || "none"})`;
  }
  return article(typeof value);
}

const article = (type: string) => (/^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`);

/** Control characters and invalid text (a binary file's bytes) must not reach the operator's terminal. */
function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  const clean = text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\ufffd]/g, "?");
  return clean.length > MAX_ERROR_CHARS ? `${clean.slice(0, MAX_ERROR_CHARS)}…` : clean;
}
