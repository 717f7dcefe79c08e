// The line format strategy files and site profiles share: `key = value`
// lines, blank lines and comments. A `#` starts a comment at the start of a
// line, or after a space when a space or the line's end follows it, so `#buy`
// is a selector and `# note` a comment. The same rules and the same messages
// as include/seckill/browser/detail/key_value.hpp.
//
// The parsers work on "byte strings" (one UTF-8 byte per character), as the
// C++ parsers work on UTF-8 bytes: a column, a length or a cut in a message
// is the same number in both languages. What leaves a parser (a value, a
// message) is decoded back to an ordinary string.

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8');

/** An ordinary string as a byte string (each character one UTF-8 byte). */
export function toBytes(text) {
  const bytes = encoder.encode(String(text));
  let out = '';
  for (let i = 0; i < bytes.length; i += 0x2000) {
    out += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x2000));
  }
  return out;
}

/** A byte string back as an ordinary string (a cut character becomes U+FFFD). */
export function fromBytes(bytes) {
  const a = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; ++i) a[i] = bytes.charCodeAt(i);
  return decoder.decode(a);
}

/**
 * A refused strategy or profile: `message` as the C++ parsers word it; `line` (0: the whole file).
 */
export class ParseError extends Error {
  constructor(message, line) {
    super(message);
    this.name = 'ParseError';
    this.line = line;
  }
}

/** Throws a ParseError "<source> line <n>: <what>" (byte strings in; an ordinary message out). */
export function lineError(source, line, what) {
  throw new ParseError(fromBytes(`${source} line ${line}: ${what}`), line);
}

/** C's isspace in the "C" locale. */
export function isSpace(c) {
  return c === ' ' || c === '\t' || c === '\n' || c === '\v' || c === '\f' || c === '\r';
}

/** C's isdigit. */
export function isDigit(c) {
  return c >= '0' && c <= '9';
}

/** C's isalnum in the "C" locale (ASCII only). */
export function isAlnum(c) {
  return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/** Without the leading and trailing C whitespace (never Unicode spaces: C++ keeps them). */
export function trim(s) {
  let b = 0;
  let e = s.length;
  while (b < e && isSpace(s[b])) ++b;
  while (e > b && isSpace(s[e - 1])) --e;
  return s.slice(b, e);
}

/** A line without its comment. */
export function stripComment(line) {
  for (let i = 0; i < line.length; ++i) {
    if (line[i] !== '#') continue;
    const starts = trim(line.slice(0, i)) === '';
    const alone = i > 0 && isSpace(line[i - 1]) && (i + 1 === line.length || isSpace(line[i + 1]));
    if (starts || alone) return line.slice(0, i);
  }
  return line;
}

/**
 * Calls `fn(lineNo, key, value)` for every `key = value` line of the byte
 * string `text`, after the checks every key shares: the `=`, a value, each key once.
 */
export function forEachKey(text, source, fn) {
  const seen = new Set();
  const lines = text.split('\n');
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const line = trim(stripComment(raw));
    if (line === '') return;
    const eq = line.indexOf('=');
    if (eq < 0) lineError(source, lineNo, `expected 'key = value', got '${line}'`);
    const key = trim(line.slice(0, eq));
    const value = trim(line.slice(eq + 1));
    if (seen.has(key)) lineError(source, lineNo, `'${key}' given twice`);
    seen.add(key);
    if (value === '') lineError(source, lineNo, `'${key}' has no value`);
    fn(lineNo, key, value);
  });
}

/** ASCII-only lower case (C's tolower in the "C" locale): other letters stay. */
export function asciiLower(s) {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}
