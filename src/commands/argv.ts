// The commands' argv, read from citty's argument definitions (which also render --help) but not by
// citty's parser: running it cost the supervisor's process 0.26 MB of PSS for the life of the
// service (docs/BENCHMARKS.md, "Third round"). citty 0.2 hands argv to node:util's parseArgs with
// `strict: false` and without `multiple`, so it
//   - keeps unknown flags silently (a typo like `--worker 4` would start 1 worker);
//   - keeps only the last of a repeated flag (`--env A=1 --env B=2`);
//   - reads a negative number as a short flag (`supervisor scale -1` arrives as an option "1").
// `scanArgs` walks argv in citty's terms (long names, aliases, `--no-<boolean>`, `--`) and answers
// those questions; `commandArgs` gives a command the values citty's runCommand would. Numbers stay
// strings: src/config/options.ts parses them, once.

import type { ArgsDef, CommandDef } from "citty";
import { usageError } from "../core/exit-codes.ts";
import { isDigits } from "../core/text.ts";

/** citty's `defineCommand` (an identity function for its types), without loading citty. */
export const defineCommand = <T extends ArgsDef>(def: CommandDef<T>): CommandDef<T> => def;

export interface ScannedArgs {
  /** Every flag given, in order, by its long name: a string, or for a boolean true/false (or its
   * inline `--flag=value` text). */
  flags: { name: string; value: string | boolean }[];
  positionals: string[];
}

/** Throws a usage error for an unknown flag or a flag without its value. `negativeNumbers`: a lone
 * `-1` is a value, not a flag (only `scale` takes one). */
export function scanArgs(rawArgs: string[], argsDef: ArgsDef, negativeNumbers = false): ScannedArgs {
  const byName = new Map<string, { name: string; takesValue: boolean; negated?: boolean }>();
  for (const [name, def] of Object.entries(argsDef)) {
    if (def.type === "positional") continue;
    const takesValue = def.type === "string" || def.type === "enum";
    const alias = "alias" in def ? def.alias : undefined;
    for (const n of [name, ...(alias === undefined ? [] : [alias].flat())])
      byName.set(n, { name, takesValue });
    if (def.type === "boolean") byName.set(`no-${name}`, { name, takesValue: false, negated: true });
  }
  const scanned: ScannedArgs = { flags: [], positionals: [] };
  for (let i = 0; i < rawArgs.length; i++) {
    const arg = rawArgs[i] as string;
    if (arg === "--") {
      scanned.positionals.push(...rawArgs.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-" || (negativeNumbers && isDigits(arg.slice(1)))) {
      scanned.positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const written = eq === -1 ? arg : arg.slice(0, eq);
    const known = byName.get(written.slice(written.startsWith("--") ? 2 : 1));
    if (!known) throw usageError(`unknown option '${written}' (see --help)`);
    let value: string | boolean;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (!known.takesValue) value = !known.negated;
    else if (i + 1 < rawArgs.length) value = rawArgs[++i] as string;
    else throw usageError(`option '${arg}' needs a value`);
    scanned.flags.push({ name: known.name, value });
  }
  return scanned;
}

/** Every value of one flag, in order. */
export const valuesOf = (scanned: ScannedArgs, name: string) =>
  scanned.flags.filter((f) => f.name === name).map((f) => f.value);

/** What a command's `run` gets as `args`, as citty's runCommand would give it: each flag's last value
 * by its long name (a boolean's inline text is true unless it is "false"), `_` the positionals, and
 * each positional definition its value in order. A missing required positional is a usage error. */
export function commandArgs(
  rawArgs: string[],
  argsDef: ArgsDef,
  negativeNumbers = false,
): Record<string, unknown> & { _: string[] } {
  const scanned = scanArgs(rawArgs, argsDef, negativeNumbers);
  const args: Record<string, unknown> & { _: string[] } = { _: scanned.positionals };
  for (const { name, value } of scanned.flags)
    args[name] = argsDef[name]?.type === "boolean" && typeof value === "string" ? value !== "false" : value;
  let next = 0;
  for (const [name, def] of Object.entries(argsDef)) {
    if (def.type !== "positional") continue;
    const value = scanned.positionals[next++];
    if (value !== undefined) args[name] = value;
    else if (def.default !== undefined) args[name] = def.default;
    else if (def.required !== false) throw usageError(`missing ${name.toUpperCase()} (see --help)`);
  }
  return args;
}
