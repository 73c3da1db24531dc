// The compiled supervisor runs its workers as the bun CLI (BUN_BE_BUN=1, see host.ts). The app must
// not see that variable: every other compiled Bun tool it runs would act as the bun CLI too (seen:
// `./tool a b` ran `bun add b`). Yet the app's own `process.execPath` children (child_process.fork, a
// `Bun.spawn([process.execPath, ...])`) must still run as bun, as under `bun app.ts`. So the variable
// is removed from the environment and given back only to commands that run this very executable.
// Bun's child_process goes through the global Bun.spawn and Bun.spawnSync, so these two cover it all.

type SpawnOptions = { cmd?: string[]; env?: Record<string, string | undefined> } & Record<string, unknown>;

export function hideBunBeBun(): void {
  if (process.env.BUN_BE_BUN !== "1") return; // from source: execPath is bun itself
  delete process.env.BUN_BE_BUN;
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
      if (!runsSelf(cmd)) return original.apply(this, args);
      const env = { ...(options?.env ?? process.env), BUN_BE_BUN: "1" };
      return Array.isArray(first)
        ? original.call(this, first, { ...options, env })
        : original.call(this, { ...options, env });
    };
  }
}
