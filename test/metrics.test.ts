// renderMetrics against a fixed snapshot: exact samples, and text that parses line by line per the
// Prometheus text exposition format (0.0.4).
import { describe, expect, test } from "bun:test";
import { renderMetrics } from "../src/control/metrics.ts";
import { SNAPSHOT } from "./fake-control.ts";
import { parseExposition } from "./prometheus.ts";

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
  ["a histogram without +Inf", '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'],
  [
    "a histogram that is not cumulative",
    '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
  ],
  ["a histogram whose count differs", '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n'],
])("the test parser rejects %s", (_, bad) => {
  expect(() => parseExposition(bad)).toThrow();
});

describe("renderMetrics with the app's request metrics (--admin)", () => {
  const http = {
    inFlight: 2,
    count: 5,
    sumSeconds: 0.75,
    upperBounds: [0.1, 1],
    buckets: [3, 1, 1],
    requests: [
      { method: "GET", code: "200", count: 4 },
      { method: "POST", code: "404", count: 1 },
    ],
  };
  const families = parseExposition(renderMetrics({ ...SNAPSHOT, http }));
  const samples = (name: string) => families.get(name)?.samples ?? [];

  test("a counter by method and code, a histogram with cumulative buckets, a gauge", () => {
    expect(families.get("http_requests_total")?.type).toBe("counter");
    expect(samples("http_requests_total")).toEqual([
      { labels: { method: "GET", code: "200" }, value: 4 },
      { labels: { method: "POST", code: "404" }, value: 1 },
    ]);
    expect(families.get("http_request_duration_seconds")?.type).toBe("histogram");
    expect(
      samples("http_request_duration_seconds").map((s) => [s.labels.__sample, s.labels.le, s.value]),
    ).toEqual([
      ["_bucket", "0.1", 3],
      ["_bucket", "1", 4],
      ["_bucket", "+Inf", 5],
      ["_sum", undefined, 0.75],
      ["_count", undefined, 5],
    ]);
    expect(samples("http_requests_in_flight")).toEqual([{ labels: {}, value: 2 }]);
  });

  test("without --admin there are no request metrics", () => {
    expect(parseExposition(renderMetrics(SNAPSHOT)).has("http_requests_total")).toBe(false);
  });
});
