// src/core/text.ts stands in for the regexps the supervisor's own process no longer runs: each helper
// is checked against the regexp it replaced, on inputs around its edges.

import { describe, expect, test } from "bun:test";
import { toBytes } from "../src/config/parsers.ts";
import {
  consistsOf,
  DIGITS,
  hasSpace,
  isDecimal,
  isDigits,
  LETTERS,
  lineAfter,
  words,
} from "../src/core/text.ts";

const samples = [
  "",
  "0",
  "12",
  "007",
  "1.5",
  "1.",
  ".5",
  "1e3",
  "-1",
  " 1",
  "1 ",
  "١٢",
  "12a",
  "a",
  "1.2.3",
  "\u00a0",
];

describe("the helpers agree with the regexps they replace", () => {
  test.each(samples)("%p", (s) => {
    expect(isDigits(s)).toBe(/^\d+$/.test(s));
    expect(isDecimal(s)).toBe(/^\d+(\.\d+)?$/.test(s));
    expect(hasSpace(s)).toBe(/\s/.test(s));
    expect(words(s)).toEqual(s.trim() === "" ? [] : s.trim().split(/\s+/));
    expect(consistsOf(s, `${LETTERS}${DIGITS}.-`)).toBe(/^[A-Za-z0-9.-]+$/.test(s));
  });

  test("words and hasSpace take every kind of whitespace that \\s does", () => {
    const spaces = " \t\n\v\f\r\u00a0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000\ufeff";
    for (const c of spaces) expect(hasSpace(`a${c}b`)).toBe(true);
    expect(words(`a${spaces}b\tc`)).toEqual(["a", "b", "c"]);
  });

  test("lineAfter finds a /proc field as the m-flagged regexp did", () => {
    const status = "Name:\tbun\nVmPeak:\t  5 kB\nVmRSS:\t   41736 kB\nCpus_allowed_list:\t0-1\n";
    expect(lineAfter(status, "VmRSS:")).toBe("41736 kB");
    expect(lineAfter(status, "Cpus_allowed_list:")).toBe("0-1");
    expect(lineAfter(status, "VmSwap:")).toBeUndefined();
  });
});

describe("toBytes", () => {
  const old = (raw: string) => {
    const m = /^(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?$/i.exec(raw.trim());
    const unit = ({ "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 } as Record<string, number>)[
      (m?.[2] ?? "").toUpperCase()
    ];
    return m && unit !== undefined ? Math.round(Number(m[1]) * unit) : "error";
  };
  const sizes = [
    "512M",
    "1G",
    "1.5g",
    "800K",
    "800 K",
    "1048576",
    "0",
    "10MB",
    "10MiB",
    "10mib",
    "10 MiB",
    "12B",
    "1iB",
  ];
  const bad = ["", "M", "1.5.5G", "1 K B", "1K B", "1Ki", "1T", "-1M", "1e3", "1,5G", "ten"];
  test.each([...sizes, ...bad])("%p as the regexp read it", (raw) => {
    let got: number | "error";
    try {
      got = toBytes(raw, "--max-memory");
    } catch {
      got = "error";
    }
    expect(got).toBe(old(raw));
  });
});
