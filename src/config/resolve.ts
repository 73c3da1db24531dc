// `resolveRunOptions` applies one precedence to every option of the table, flag > environment >
// config file > default, and remembers where each value came from (for --print-config and for error
// messages). Pure: no I/O.

import { usageError } from "../core/exit-codes.ts";
import {
  CONFIG_ONLY_KEYS,
  configKey,
  envName,
  OPTIONS,
  type OptionKey,
  type OptionSpec,
  type RunOptions,
  type Sources,
} from "./options.ts";

export interface Layers {
  /** Parsed flags, keyed by flag name (kebab-case); strings, booleans, or arrays for repeated flags. */
  flags: Record<string, unknown>;
  env: Record<string, string | undefined>;
  /** The config file's default export, and its name for messages. */
  config?: { file: string; values: Record<string, unknown> };
}

/** Apply flag > environment > config file > default to every option; errors name their source. */
export function resolveRunOptions(layers: Layers): { options: RunOptions; sources: Sources } {
  const config = layers.config?.values ?? {};
  const configName = layers.config?.file ?? "config";
  const known = new Set(["entry", ...OPTIONS.map(configKey), ...CONFIG_ONLY_KEYS]);
  for (const key of Object.keys(config)) {
    if (!known.has(key)) throw usageError(`${configName}: unknown key '${key}'${suggest(key, [...known])}`);
  }
  const options: Partial<RunOptions> = {};
  const sources: Partial<Sources> = {};
  const problems: string[] = [];
  for (const spec of OPTIONS) {
    try {
      sources[spec.key] = resolveOne(spec, layers, config, configName, options);
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  // One line per problem, from every place at once, so a broken deployment is fixed in one go.
  if (problems.length > 0) throw usageError(problems.join("\n"));
  const entry = layers.flags.entry ?? layers.env.SUPERVISOR_ENTRY ?? config.entry;
  if (entry === undefined || entry === "") {
    throw usageError("missing the app to run: supervisor run <entry> (e.g. supervisor run app.ts -w 4)");
  }
  if (typeof entry !== "string") throw usageError(`${configName}: entry must be a file path`);
  options.entry = entry;
  sources.entry =
    layers.flags.entry !== undefined
      ? "argument"
      : layers.env.SUPERVISOR_ENTRY !== undefined
        ? "SUPERVISOR_ENTRY"
        : `${configName}: entry`;
  // Every key is set: the table's by the loop above (or it threw), the entry just now.
  const result = options as RunOptions;
  checkTogether(result, sources as Sources);
  return { options: result, sources: sources as Sources };
}

// --- internal ---

/** One option's value into `options`; returns where it came from. */
function resolveOne<K extends OptionKey>(
  spec: OptionSpec<K>,
  layers: Layers,
  config: Record<string, unknown>,
  configName: string,
  options: Partial<RunOptions>,
): string {
  const [raw, source] = pickLayer(spec, layers, config, configName);
  options[spec.key] = raw === undefined ? spec.fallback : spec.parse(raw, source);
  return raw === undefined ? "default" : source;
}

function pickLayer(
  spec: OptionSpec,
  layers: Layers,
  config: Record<string, unknown>,
  configName: string,
): [unknown, string] {
  const flagValue = layers.flags[spec.flag];
  if (flagValue !== undefined)
    return [flagValue, spec.alias ? `-${spec.alias}/--${spec.flag}` : `--${spec.flag}`];
  for (const name of [envName(spec), ...(spec.conventions ?? [])]) {
    const value = layers.env[name];
    if (value !== undefined && value !== "") return [value, name];
  }
  const key = configKey(spec);
  if (config[key] !== undefined) return [config[key], `${configName}: ${key}`];
  return [undefined, "default"];
}

function checkTogether(o: RunOptions, sources: Sources): void {
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) {
    const given = o.tlsCert === undefined ? sources.tlsKey : sources.tlsCert;
    throw usageError(`${given} needs its pair: HTTPS takes both --tls-cert and --tls-key`);
  }
  if (o.maxRequestsJitter > 0 && o.maxRequests === 0) {
    throw usageError(`${sources.maxRequestsJitter} needs --max-requests`);
  }
}

function suggest(key: string, known: string[]): string {
  const near = known.find((k) => k.toLowerCase() === key.toLowerCase() || distance(k, key) <= 2);
  return near ? ` (did you mean '${near}'?)` : "";
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] as number;
      row[j] = Math.min(cur + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] as number;
}
