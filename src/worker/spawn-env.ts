// What the app's child processes see. The compiled supervisor runs its workers as the bun CLI
// (BUN_BE_BUN=1, see src/runtime/host.ts), and hands each worker its config and code in the
// environment. The app's children must see none of that: another compiled Bun tool would act as the
// bun CLI (seen: `./tool a b` ran `bun add b`). Yet the app's own `process.execPath` children
// (child_process.fork, a `Bun.spawn([process.execPath, ...])`) must still run as bun, as under `bun
// app.ts`.
// Bun.spawn without an `env` passes the environment the process started with, not process.env as
// changed since, so every spawn is given process.env explicitly; BUN_BE_BUN goes back only to commands
// that run this very executable. Bun's child_process goes through the global Bun.spawn and
// Bun.spawnSync, so these two cover it all.

type SpawnOptions = { cmd?: string[]; env?: Record<string, string | undefined> } & Record<string, unknown>;

/** Remove `names` from the environment the app and its children see. */
export function cleanChildEnvironment(names: string[]): void {
  const asBun = process.env.BUN_BE_BUN === "1"; // compiled; from source execPath is bun itself
  for (const name of [...names, "BUN_BE_BUN"]) delete process.env[name];
  const self = process.execPath;
  const runsSelf = (cmd: unknown): boolean =>
    Array.isArray(cmd) &&
    (cmd[0] === self ||
      (/\/(ba|da|z)?sh$/.test(String(cmd[0])) && cmd.some((a) => String(a).includes(self))));
  for (const name of ["spawn", "spawnSync"] as const) {
    const original = Bun[name] as (...args: unknown[]) => unknown;
    (Bun as unknown as Record<string, unknown>)[name] = function (this: unknown, ...args: unknown[]) {
      // Bun.spawn(cmd, options) or Bun.spawn({ cmd, ...options })
      const [first, second] = args;
      const options = (Array.isArray(first) ? second : first) as SpawnOptions | undefined;
      const cmd = Array.isArray(first) ? first : options?.cmd;
      const env = options?.env ?? process.env;
      const withEnv = { ...options, env: asBun && runsSelf(cmd) ? { ...env, BUN_BE_BUN: "1" } : env };
      return Array.isArray(first) ? original.call(this, first, withEnv) : original.call(this, withEnv);
    };
  }
}
