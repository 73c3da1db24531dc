// String tests for the supervisor's own process, which runs no regular expression: the first one a
// process runs brings in JavaScriptCore's regular-expression engine, 0.5 MB of code that no worker
// shares with the supervisor (parent PSS 13.46 → 12.92 MB without them, docs/BENCHMARKS.md "Fifth
// round"). test/no-regexp.test.ts runs a supervisor with most options on and counts its regexps.
// Workers and the short-lived client commands may use them freely.

export const DIGITS = "0123456789";
export const LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
export const HEX_DIGITS = `${DIGITS}ABCDEFabcdef`;

/** Not empty, and every character one of `chars` (`/^[chars]+$/`). */
export function consistsOf(s: string, chars: string): boolean {
  if (s === "") return false;
  for (const c of s) if (!chars.includes(c)) return false;
  return true;
}

/** `/^\d+$/` */
export const isDigits = (s: string): boolean => consistsOf(s, DIGITS);

/** `/^\d+(\.\d+)?$/`: "12", "12.5"; not "12.", ".5" or "1e3". */
export function isDecimal(s: string): boolean {
  const dot = s.indexOf(".");
  return dot === -1 ? isDigits(s) : isDigits(s.slice(0, dot)) && isDigits(s.slice(dot + 1));
}

/** One character that `\s` matches (String.prototype.trim removes the same set). */
export const isSpace = (c: string): boolean => c !== "" && c.trim() === "";

/** `/\s/.test(s)` */
export function hasSpace(s: string): boolean {
  for (const c of s) if (isSpace(c)) return true;
  return false;
}

/** The parts of `s` between runs of whitespace (`s.trim().split(/\s+/)`, but "" gives []). */
export function words(s: string): string[] {
  const found: string[] = [];
  let word = "";
  for (const c of s) {
    if (!isSpace(c)) word += c;
    else if (word) {
      found.push(word);
      word = "";
    }
  }
  if (word) found.push(word);
  return found;
}

/** The rest of the first line of `text` that starts with `key`, trimmed ("VmRSS:" in
 * /proc/PID/status gives "1234 kB"); undefined when no line does. */
export function lineAfter(text: string, key: string): string | undefined {
  for (const line of text.split("\n")) if (line.startsWith(key)) return line.slice(key.length).trim();
  return undefined;
}
