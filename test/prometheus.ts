// A strict parser for the Prometheus text exposition format (0.0.4), enough to reject what Prometheus
// would reject: HELP/TYPE before samples, one family at a time, escaped labels, no duplicate series,
// and for histograms ascending cumulative buckets ending in +Inf = _count. (A histogram sample carries
// its suffix in the label `__sample`, which no real label may use.)

export interface Family {
  type: string;
  help: string;
  samples: { labels: Record<string, string>; value: number }[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: string | undefined;
  const lines = text.split("\n");
  if (lines.pop() !== "") throw new Error("text must end with a line feed");
  for (const [i, line] of lines.entries()) {
    const fail = (why: string) => new Error(`line ${i + 1}: ${why}: ${JSON.stringify(line)}`);
    if (line === "") throw fail("empty line");
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name = "", rest = ""] = meta;
      if (!METRIC_NAME.test(name)) throw fail("bad metric name");
      const family = families.get(name) ?? { type: "", help: "", samples: [] };
      if (family.samples.length) throw fail(`${kind} after samples`);
      if (kind === "TYPE") {
        if (!TYPES.has(rest)) throw fail("bad type");
        if (family.type) throw fail("second TYPE");
        family.type = rest;
      } else {
        if (family.help) throw fail("second HELP");
        family.help = rest;
      }
      if (current !== name && families.has(name) && family.samples.length) throw fail("family split");
      families.set(name, family);
      current = name;
      continue;
    }
    if (line.startsWith("#")) continue; // a comment
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)( -?\d+)?$/.exec(line);
    if (!sample) throw fail("not a sample");
    const [, sampleName = "", labelText, rawValue = ""] = sample;
    // A histogram's samples are <name>_bucket, <name>_sum and <name>_count.
    const base = sampleName.replace(/_(bucket|sum|count)$/, "");
    const name = families.get(current ?? "")?.type === "histogram" && base === current ? base : sampleName;
    if (name !== current) throw fail("sample outside its family (no TYPE before it, or family split)");
    const family = families.get(name) as Family;
    if (!family.type) throw fail("sample before TYPE");
    const value = parseValue(rawValue);
    if (value === undefined) throw fail("bad value");
    const labels = labelText ? parseLabels(labelText.slice(1, -1), fail) : {};
    if (family.type === "histogram") labels.__sample = sampleName.slice(name.length) || "";
    if (family.samples.some((s) => JSON.stringify(s.labels) === JSON.stringify(labels))) {
      throw fail("duplicate series");
    }
    family.samples.push({ labels, value });
  }
  for (const [name, family] of families) if (family.type === "histogram") checkHistogram(name, family);
  return families;
}

/** Buckets with ascending `le`, cumulative counts, a +Inf bucket equal to _count, and a _sum. */
function checkHistogram(name: string, family: Family): void {
  const fail = (why: string) => new Error(`histogram ${name}: ${why}`);
  const buckets = family.samples.filter((s) => s.labels.__sample === "_bucket");
  const count = family.samples.find((s) => s.labels.__sample === "_count")?.value;
  if (!family.samples.some((s) => s.labels.__sample === "_sum")) throw fail("no _sum");
  if (count === undefined) throw fail("no _count");
  let lastLe = Number.NEGATIVE_INFINITY;
  let lastCount = 0;
  for (const b of buckets) {
    const le = parseValue(b.labels.le ?? "");
    if (le === undefined || le <= lastLe) throw fail(`le ${b.labels.le} not ascending`);
    if (b.value < lastCount) throw fail(`bucket le=${b.labels.le} is not cumulative`);
    lastLe = le;
    lastCount = b.value;
  }
  if (lastLe !== Number.POSITIVE_INFINITY) throw fail("no +Inf bucket");
  if (lastCount !== count) throw fail("+Inf bucket differs from _count");
}

function parseValue(raw: string): number | undefined {
  if (raw === "NaN") return Number.NaN;
  if (raw === "+Inf") return Number.POSITIVE_INFINITY;
  if (raw === "-Inf") return Number.NEGATIVE_INFINITY;
  return /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw) ? Number(raw) : undefined;
}

function parseLabels(text: string, fail: (why: string) => Error): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest.length) {
    const m = /^([^=]+)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest);
    if (!m) throw fail("bad labels");
    const [all, name = "", raw = ""] = m;
    if (!LABEL_NAME.test(name) || name.startsWith("__")) throw fail(`bad label name ${name}`);
    if (name in labels) throw fail(`duplicate label ${name}`);
    labels[name] = raw.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
    rest = rest.slice(all.length);
  }
  return labels;
}
