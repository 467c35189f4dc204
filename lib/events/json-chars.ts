/** The characters of JSON text, as the scanner reads them: string runs, escapes, numbers and literals. */

/** The characters that end a run of plain string text: a quote, a backslash, a control character. */
// eslint-disable-next-line no-control-regex -- raw control characters are exactly what JSON strings may not hold
export const SPECIAL = /["\\\u0000-\u001f]/g;

/** What each one-character escape stands for, by the character after the backslash. */
export const ESCAPES: Readonly<Record<number, string>> = { 0x22: '"', 0x5c: '\\', 0x2f: '/', 0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t' };

export function isSpecial(code: number): boolean {
  return code === 0x22 || code === 0x5c || code < 0x20;
}

/** The character of the four hex digits at `at` (`\uXXXX`), or undefined when they are not four hex digits. */
export function hexUnit(text: string, at: number): string | undefined {
  let unit = 0;
  for (let k = at; k < at + 4; k++) {
    const c = text.charCodeAt(k);
    const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
    if (digit < 0) return undefined;
    unit = unit * 16 + digit;
  }
  return String.fromCharCode(unit);
}

export function isTokenChar(code: number): boolean {
  // Digits, letters of literals and exponents, sign and decimal point.
  return (code >= 0x30 && code <= 0x39) || (code >= 0x61 && code <= 0x7a) || code === 0x2d || code === 0x2b || code === 0x2e || code === 0x45;
}
