// When a sale starts: an ISO 8601 time with its UTC offset, read as
// include/seckill/browser/sale_time.hpp (try_parse_sale_time) reads it, with
// the same messages, and the time a countdown shows as left
// (parse_time_left). Plain ES module: no dependencies, no eval.

import {toBytes} from './key_value.js';

function timeError(text, what) {
  const e = new Error(
      'expects an ISO 8601 time with its UTC offset like 2026-12-04T20:00:00+08:00 ' +
          `or 2026-12-04T12:00:00.250Z: ${what}, got '${text}'`,
  );
  e.badTime = true;
  throw e;
}

function daysInMonth(y, m) {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(m) ? 30 : 31;
}

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar.
function daysFromCivil(y, m, d) {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM|+HHMM)` (a byte
 * string or an ordinary ASCII one): `{ at_ms, utc_offset_min }` (the instant
 * in ms since the epoch, rounded down), or `{ why }` saying what is wrong.
 */
export function tryParseSaleTime(text) {
  try {
    let p = 0;
    const digits = (n, what) => {
      if (p + n > text.length) timeError(text, what);
      let v = 0;
      for (let i = 0; i < n; ++i) {
        const c = text[p + i];
        if (c < '0' || c > '9') timeError(text, what);
        v = v * 10 + (c.charCodeAt(0) - 48);
      }
      p += n;
      return v;
    };
    const expect = (c, what) => {
      if (p >= text.length || text[p] !== c) timeError(text, what);
      ++p;
    };
    const y = digits(4, 'no 4-digit year');
    expect('-', 'no \'-\' after the year');
    const mo = digits(2, 'no 2-digit month');
    expect('-', 'no \'-\' after the month');
    const d = digits(2, 'no 2-digit day');
    if (p >= text.length || (text[p] !== 'T' && text[p] !== 't' && text[p] !== ' ')) {
      timeError(text, 'no time of day (a \'T\' and HH:MM:SS after the date)');
    }
    ++p;
    const h = digits(2, 'no 2-digit hour');
    expect(':', 'no \':\' after the hour');
    const mi = digits(2, 'no 2-digit minute');
    expect(':', 'no \':\' after the minute (seconds are required)');
    const se = digits(2, 'no 2-digit second');
    let fracNs = 0;
    if (p < text.length && (text[p] === '.' || text[p] === ',')) {
      ++p;
      let scale = 100000000;
      let n = 0;
      while (p < text.length && text[p] >= '0' && text[p] <= '9') {
        if (++n > 9) timeError(text, 'more than 9 fraction digits');
        fracNs += (text.charCodeAt(p) - 48) * scale;
        scale = Math.floor(scale / 10);
        ++p;
      }
      if (n === 0) timeError(text, 'no digits after the decimal point');
    }
    if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo)) timeError(text, 'no such date');
    if (h > 23 || mi > 59 || se > 59) timeError(text, 'no such time of day');
    const noOffset = 'no UTC offset (add Z or +HH:MM: a local time is ambiguous)';
    if (p >= text.length) timeError(text, noOffset);
    let offset = 0;
    if (text[p] === 'Z' || text[p] === 'z') {
      ++p;
    } else if (text[p] === '+' || text[p] === '-') {
      const minus = text[p] === '-';
      ++p;
      const oh = digits(2, 'no 2-digit offset hour');
      if (p < text.length && text[p] === ':') ++p;
      const om = digits(2, 'no 2-digit offset minute');
      if (oh > 14 || om > 59 || (oh === 14 && om > 0)) timeError(text, 'an offset beyond +-14:00');
      offset = oh * 60 + om;
      if (minus) offset = -offset;
    } else {
      timeError(text, noOffset);
    }
    if (p !== text.length) timeError(text, 'text after the offset');
    const local = ((daysFromCivil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + se * 1000;
    return {at_ms: local - offset * 60000 + Math.floor(fracNs / 1e6), utc_offset_min: offset};
  } catch (e) {
    if (!e.badTime) throw e;
    return {why: e.message};
  }
}

// The units a countdown writes after a number, longest first where one is a
// prefix of another ("ms" before "m", "分钟" before "分"), as byte strings.
const UNITS = [
  ['毫秒', 1],       ['小时', 3600000], ['分钟', 60000],     ['天', 86400000],  ['时', 3600000],
  ['分', 60000],     ['秒', 1000],      ['milliseconds', 1], ['ms', 1],         ['days', 86400000],
  ['day', 86400000], ['d', 86400000],   ['hours', 3600000],  ['hour', 3600000], ['hrs', 3600000],
  ['hr', 3600000],   ['h', 3600000],    ['minutes', 60000],  ['minute', 60000], ['mins', 60000],
  ['min', 60000],    ['m', 60000],      ['seconds', 1000],   ['second', 1000],  ['secs', 1000],
  ['sec', 1000],     ['s', 1000],
].map(([text, ms]) => [toBytes(text), ms]);

// The unit at the start of `s`: [its length, its ms], or null.
function timeUnit(s) {
  for (const [text, ms] of UNITS) {
    if (!s.startsWith(text)) continue;
    // An ASCII unit must end its word: "5 sale" is no "5 s".
    if (text.charCodeAt(text.length - 1) < 0x80 && text.length < s.length &&
        /[a-zA-Z]/.test(s[text.length])) {
      continue;
    }
    return [text.length, ms];
  }
  return null;
}

const isDigitAt = (s, p) => p < s.length && s[p] >= '0' && s[p] <= '9';

// A number at `at.p` (digits, an optional fraction); advances `at.p`.
function readNumber(s, at) {
  const start = at.p;
  let v = 0;
  while (isDigitAt(s, at.p)) v = v * 10 + (s.charCodeAt(at.p++) - 48);
  if (at.p === start) return null;
  if (at.p + 1 < s.length && s[at.p] === '.' && isDigitAt(s, at.p + 1)) {
    ++at.p;
    let scale = 0.1;
    while (isDigitAt(s, at.p)) {
      v += (s.charCodeAt(at.p++) - 48) * scale;
      scale /= 10;
    }
  }
  return v;
}

function skipSpaces(s, at) {
  while (at.p < s.length && ' \t\n\r'.includes(s[at.p])) ++at.p;
}

/**
 * The time a countdown element shows as left, in ms, or null when its text
 * holds no time: parse_time_left of sale_time.hpp (colon forms `MM:SS`,
 * `HH:MM:SS`, `D:HH:MM:SS`; numbers with units `1h 2m 3s`, `还剩 1分23秒`;
 * a lone number is no time).
 */
export function parseTimeLeft(textIn) {
  const text = toBytes(textIn);
  let p = 0;
  while (p < text.length && !isDigitAt(text, p)) ++p;
  if (p === text.length) return null;
  {
    const at = {p};
    const parts = [];
    while (parts.length < 4) {
      const before = at.p;
      const v = readNumber(text, at);
      if (v === null) break;
      const fraction = text.slice(before, at.p).includes('.');
      parts.push(v);
      if (fraction || at.p >= text.length || text[at.p] !== ':') break;
      ++at.p;
    }
    const n = parts.length;
    if (n >= 2) {
      const scale = [86400000, 3600000, 60000, 1000];
      let ms = 0;
      for (let i = 0; i < n; ++i) {
        if (i > 0 && i + (4 - n) >= 2 && !(parts[i] < 60)) return null;
        if (i > 0 && i + (4 - n) === 1 && !(parts[i] < 24)) return null;
        ms += parts[i] * scale[i + (4 - n)];
      }
      return Math.trunc(ms);
    }
  }
  let total = 0;
  let terms = 0;
  for (;;) {
    const at = {p};
    const v = readNumber(text, at);
    if (v === null) break;
    skipSpaces(text, at);
    const unit = timeUnit(text.slice(at.p));
    if (unit === null) break;
    total += v * unit[1];
    ++terms;
    p = at.p + unit[0];
    const rest = {p};
    skipSpaces(text, rest);
    p = rest.p;
  }
  return terms === 0 ? null : Math.trunc(total);
}
