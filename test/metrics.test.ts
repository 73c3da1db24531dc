// renderMetrics against a fixed snapshot: exact samples, and text that parses line by line per the
// Prometheus text exposition format (0.0.4).
import { describe, expect, test } from "bun:test";
import { renderMetrics } from "../src/metrics.ts";
import { SNAPSHOT } from "./fake-control.ts";

describe("renderMetrics", () => {
  const text = renderMetrics(SNAPSHOT);
  const families = parseExposition(text);
  const value = (name: string, labels: Record<string, string> = {}) =>
    families.get(name)?.samples.find((s) => JSON.stringify(s.labels) === JSON.stringify(labels))?.value;

  test("parses line by line as Prometheus text format", () => {
    expect(text.endsWith("\n")).toBe(true);
    expect(families.size).toBeGreaterThan(5);
  });

  test.each([
    ["supervisor_up", {}, 1],
    ["supervisor_workers_configured", {}, 3],
    ["supervisor_workers_ready", {}, 2],
    ["supervisor_uptime_seconds", {}, 125.5],
    ["supervisor_build_info", { version: "0.1.0" }, 1],
    ["supervisor_workers", { state: "ready" }, 2],
    ["supervisor_workers", { state: "starting" }, 1],
    ["supervisor_workers", { state: "draining" }, 0],
    ["supervisor_worker_restarts_total", { reason: "crash" }, 2],
    ["supervisor_worker_restarts_total", { reason: "timeout" }, 0],
    ["supervisor_worker_restarts_total", { reason: "memory" }, 1],
    ["supervisor_worker_restarts_total", { reason: "max-requests" }, 0],
    ["supervisor_worker_restarts_total", { reason: "reload" }, 3],
    ["supervisor_worker_resident_memory_bytes", { slot: "0", pid: "5001" }, 52_428_800],
    ["supervisor_worker_resident_memory_bytes", { slot: "2", pid: "5003" }, 41_943_040],
    ["supervisor_worker_requests_total", { slot: "0", pid: "5001" }, 1500],
    ["supervisor_worker_requests_total", { slot: "1", pid: "5002" }, 0],
    ["supervisor_worker_requests_total", { slot: "2", pid: "5003" }, 700],
    ["supervisor_worker_uptime_seconds", { slot: "2", pid: "5003" }, 60.25],
  ])("%s %p = %p", (name, labels, expected) => {
    expect(value(name, labels as Record<string, string>)).toBe(expected);
  });

  test("types: counters end in _total, the rest are gauges", () => {
    for (const [name, family] of families) {
      expect(family.type).toBe(name.endsWith("_total") ? "counter" : "gauge");
      expect(family.help.length).toBeGreaterThan(0);
    }
  });

  test("no series for an unknown RSS or a slot without a process", () => {
    const rss = families.get("supervisor_worker_resident_memory_bytes")?.samples ?? [];
    expect(rss.map((s) => s.labels.slot)).toEqual(["0", "2"]);
    const requests = families.get("supervisor_worker_requests_total")?.samples ?? [];
    expect(requests.map((s) => s.labels.slot)).toEqual(["0", "1", "2"]);
  });

  test("label values are escaped", () => {
    const odd = renderMetrics({ ...SNAPSHOT, version: 'a"b\\c\nd' });
    expect(odd).toContain('supervisor_build_info{version="a\\"b\\\\c\\nd"} 1\n');
    expect(parseExposition(odd).get("supervisor_build_info")?.samples[0]?.labels.version).toBe('a"b\\c\nd');
  });

  test("an empty supervisor still renders every family", () => {
    const empty = parseExposition(
      renderMetrics({ ...SNAPSHOT, workers: [], workersReady: 0, phase: "booting" }),
    );
    expect([...empty.keys()]).toEqual([...families.keys()]);
    expect(empty.get("supervisor_worker_requests_total")?.samples).toEqual([]);
  });
});

test.each([
  ["no TYPE", "x 1\n"],
  ["no final line feed", "# TYPE x gauge\nx 1"],
  ["bad value", "# TYPE x gauge\nx one\n"],
  ["bad label", '# TYPE x gauge\nx{1a="b"} 1\n'],
  ["unescaped quote", '# TYPE x gauge\nx{a="b"c"} 1\n'],
  ["split family", "# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx 2\n"],
  ["duplicate series", "# TYPE x gauge\nx 1\nx 2\n"],
])("the test parser rejects %s", (_, bad) => {
  expect(() => parseExposition(bad)).toThrow();
});

// --- a strict parser for the text format, enough to reject what Prometheus would reject ---

interface Family {
  type: string;
  help: string;
  samples: { labels: Record<string, string>; value: number }[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

function parseExposition(text: string): Map<string, Family> {
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
    const [, name = "", labelText, rawValue = ""] = sample;
    if (name !== current) throw fail("sample outside its family (no TYPE before it, or family split)");
    const family = families.get(name) as Family;
    if (!family.type) throw fail("sample before TYPE");
    const value = parseValue(rawValue);
    if (value === undefined) throw fail("bad value");
    const labels = labelText ? parseLabels(labelText.slice(1, -1), fail) : {};
    if (family.samples.some((s) => JSON.stringify(s.labels) === JSON.stringify(labels))) {
      throw fail("duplicate series");
    }
    family.samples.push({ labels, value });
  }
  return families;
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
