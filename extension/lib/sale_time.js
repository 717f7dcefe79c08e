// When a sale starts: an ISO 8601 time with its UTC offset, read as
// include/seckill/browser/sale_time.hpp (try_parse_sale_time) reads it, with
// the same messages. Plain ES module: no dependencies, no eval.

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
