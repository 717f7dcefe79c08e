// A strategy file, parsed as include/seckill/browser/strategy.hpp's
// parse_strategy parses it (the same keys, ranges and messages), and the
// decision of its priority_strategy: what to choose, how many, and the
// pauses before each action. Standalone mode (the extension decides) runs
// this; the native-messaging mode runs the C++ grabber itself. Both are held
// to one table of cases: tests/browser/strategy_cases.json.
// Plain ES module: no dependencies, no eval; the service worker, the options
// page and node 20 import it.

import {forEachKey, fromBytes, isDigit, ParseError, toBytes, trim} from './key_value.js';
import {applyProfileKey, checkProfile, defaultProfile, PROFILE_KEYS, saysInStock} from './profile.js';
import {tryParseSaleTime} from './sale_time.js';
import {tryParseNoticeFilter, tryParseWebhook} from './webhook.js';

export {ParseError, saysInStock};

const NOTICE_KINDS = ['ordered', 'failed', 'sold-out', 'hand-off', 'stock'];

/** The longest deadline a strategy may give: a year, in ms. */
export const MAX_STRATEGY_DEADLINE_MS = 24 * 365 * 3600000;

/**
 * The keys standalone mode reads but does not act on (the C++ grabber does):
 * a webhook's notices and the stock read from the page's own responses.
 */
export const STANDALONE_IGNORED_KEYS = [
  'notify',
  'notify_body',
  'notify_on',
  'stock_response',
  'stock_json',
  'stock_text',
  'stock_offers',
  'stock_offer.sku',
  'stock_offer.stock',
  'stock_offer.price',
  'stock_confirm',
];

function strategyError(line, what) {
  throw new ParseError(fromBytes(`strategy line ${line}: ${what}`), line);
}

// A number as std::from_chars reads it (nan and inf included; beyond a
// double's range an error). `v` is a byte string.
const NUMBER =
    /^-?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?)$/i;

function parseNumber(v, line, key) {
  if (!NUMBER.test(v)) strategyError(line, `${key} must be a number, got '${v}'`);
  const body = v.replace(/^-/, '').toLowerCase();
  const minus = v[0] === '-';
  if (body.startsWith('nan')) return NaN;
  if (body.startsWith('inf')) return minus ? -Infinity : Infinity;
  const d = Number(v);
  const mantissa = body.replace(/e.*$/, '');
  if (!Number.isFinite(d) || (d === 0 && /[1-9]/.test(mantissa))) {
    strategyError(line, `${key} is out of range, got '${v}'`);
  }
  return d;
}

// A duration in [1 ms, a year], in ms.
function parseDuration(v, line, key) {
  let digits = 0;
  while (digits < v.length && (isDigit(v[digits]) || v[digits] === '.')) ++digits;
  const unit = trim(v.slice(digits));
  const n = digits === 0 ? -1 : parseNumber(v.slice(0, digits), line, key);
  let ms = -1;
  if (unit === 'ms')
    ms = n;
  else if (unit === 's')
    ms = n * 1000;
  else if (unit === 'm' || unit === 'min')
    ms = n * 60000;
  else if (unit === 'h')
    ms = n * 3600000;
  if (!(n > 0 && ms > 0)) {
    strategyError(
        line, `${key} must be a positive duration like 500ms, 30s, 10m or 1h, got '${v}'`);
  }
  if (!(ms <= MAX_STRATEGY_DEADLINE_MS)) {
    strategyError(
        line, `${key} must be at most ${MAX_STRATEGY_DEADLINE_MS} ms (365 days), got '${v}'`);
  }
  if (ms < 1) strategyError(line, `${key} must be at least 1 ms, got '${v}'`);
  return Math.trunc(ms);
}

// `40ms..120ms`: bounds in ms or s, min <= max <= 10 s.
function parseDelay(v, line, key) {
  const dots = v.indexOf('..');
  const bound = (b) => {
    b = trim(b);
    let digits = 0;
    while (digits < b.length && isDigit(b[digits])) ++digits;
    const unit = trim(b.slice(digits));
    if (digits === 0 || digits > 6 || (unit !== 'ms' && unit !== 's')) return -1;
    const n = Number(b.slice(0, digits));
    return unit === 's' ? n * 1000 : n;
  };
  const lo = dots < 0 ? -1 : bound(v.slice(0, dots));
  const hi = dots < 0 ? -1 : bound(v.slice(dots + 2));
  if (lo < 0 || hi < 0) {
    strategyError(
        line, `${key} must be two whole durations in ms or s like 40ms..120ms, got '${v}'`);
  }
  if (lo > hi) strategyError(line, `${key} has its lower bound above the upper, got '${v}'`);
  if (hi > 10000) strategyError(line, `${key} must be at most 10s, got '${v}'`);
  return {min_ms: lo, max_ms: hi};
}

// detail::parse_ms: a whole number of milliseconds (`-1250`, `-1250ms`,
// `+3s`), signed when `lo` < 0, within [lo, hi] ms.
function parseMs(v, line, key, lo, hi) {
  let body = v;
  let negative = false;
  if (lo < 0 && body.length > 0 && (body[0] === '-' || body[0] === '+')) {
    negative = body[0] === '-';
    body = body.slice(1);
  }
  let digits = 0;
  while (digits < body.length && body[digits] >= '0' && body[digits] <= '9') ++digits;
  const unit = trim(body.slice(digits));
  if (digits === 0 || digits > 9 || (unit !== 'ms' && unit !== 's' && unit !== '')) {
    strategyError(line, `${key} must be a whole number of ms or s like ` +
                            `${lo < 0 ? '-1250ms or +2s' : '50ms or 2s'}, got '${v}'`);
  }
  let n = Number(body.slice(0, digits));
  if (unit === 's') n *= 1000;
  if (negative) n = -n;
  if (n < lo || n > hi) strategyError(line, `${key} must be in [${lo}ms, ${hi}ms], got '${v}'`);
  return n;
}

function yesNo(value, line, key) {
  if (value === 'yes' || value === 'true') return true;
  if (value === 'no' || value === 'false') return false;
  return strategyError(line, `${key} must be yes or no, got '${value}'`);
}

/** A strategy with every key at its default (strategy_config's), `want` empty. */
export function defaultStrategy() {
  return {
    want: [],
    max_price: null,
    quantity: 1,
    partial: true,
    deadline_ms: 600000,
    actions_per_second: 3,
    burst: 3,
    retries: 1,
    start: null,
    delay: {min_ms: 0, max_ms: 0},
    delay_seed: null,
    pace_reaction: true,
    profile: null,
    profile_file: '',
    notify: null,
    notify_on: [...NOTICE_KINDS],
    mode: 'buy',
    clock_offset_ms: null,
    max_clock_uncertainty_ms: null,
    warn_uncertain_clock: false,
    resync_before_ms: 10000,
    prepare_before_ms: 5000,
  };
}

/**
 * Parses a strategy file's text; the keys of a site profile may stand in it
 * too (then `profile` is the parsed profile). Throws a ParseError (`line`:
 * the line at fault, 0 for the whole file) worded as parse_strategy words it.
 * `delay_seed` is a decimal string (a 64-bit number does not fit a double).
 */
export function parseStrategy(text) {
  const cfg = defaultStrategy();
  let sawWant = false;
  const profile = defaultProfile();
  const profileSeen = new Map();
  let profileLine = 0;
  let notify = '';
  let notifyBody = '';
  let notifyLine = 0;
  let bodyLine = 0;
  forEachKey(toBytes(text), 'strategy', (line, key, value) => {
    if (applyProfileKey(profile, profileSeen, key, value, line, 'strategy')) return;
    switch (key) {
      case 'profile':
        cfg.profile_file = fromBytes(value);
        profileLine = line;
        break;
      case 'want':
        sawWant = true;
        for (const raw of value.split(',')) {
          const item = trim(raw);
          const colon = item.indexOf(':');
          const kind = colon < 0 ? '' : item.slice(0, colon);
          const name = colon < 0 ? item : trim(item.slice(colon + 1));
          if ((kind !== 'sku' && kind !== 'category') || name === '') {
            strategyError(line, `want entries are sku:<id> or category:<name>, got '${item}'`);
          }
          cfg.want.push({kind, value: fromBytes(name)});
        }
        break;
      case 'max_price': {
        const p = parseNumber(value, line, key);
        if (!Number.isFinite(p))
          strategyError(line, `max_price must be a finite number, got ${value}`);
        if (!(p > 0)) strategyError(line, `max_price must be > 0, got ${value}`);
        cfg.max_price = p;
        break;
      }
      case 'quantity': {
        const q = parseNumber(value, line, key);
        if (!(q >= 1 && q <= 1000) || q !== Math.floor(q)) {
          strategyError(line, `quantity must be a whole number in [1, 1000], got ${value}`);
        }
        cfg.quantity = q;
        break;
      }
      case 'retries': {
        const r = parseNumber(value, line, key);
        if (!(r >= 0 && r <= 10) || r !== Math.floor(r)) {
          strategyError(line, `retries must be a whole number in [0, 10], got ${value}`);
        }
        cfg.retries = r;
        break;
      }
      case 'deadline':
        cfg.deadline_ms = parseDuration(value, line, key);
        break;
      case 'pace': {
        let v = value;
        let per = 1;  // seconds per unit
        if (v.length > 2 && v.endsWith('/s')) {
          v = trim(v.slice(0, -2));
        } else if (v.length > 4 && v.endsWith('/min')) {
          v = trim(v.slice(0, -4));
          per = 60;
        }
        const r = parseNumber(v, line, key) / per;
        if (!(r > 0) || r > 50)
          strategyError(line, `pace must be in (0, 50] actions per second, got ${value}`);
        cfg.actions_per_second = r;
        break;
      }
      case 'partial':
        cfg.partial = yesNo(value, line, key);
        break;
      case 'start': {
        const t = tryParseSaleTime(value);
        if (t.why) strategyError(line, `start ${t.why}`);
        cfg.start = t;
        break;
      }
      case 'delay':
        cfg.delay = parseDelay(value, line, key);
        break;
      case 'delay_seed':
        // std::from_chars into a uint64_t: digits only, at most 2^64 - 1.
        if (!/^[0-9]+$/.test(value) || BigInt(value) > 0xffffffffffffffffn) {
          strategyError(line, `delay_seed must be a whole number >= 0, got '${value}'`);
        }
        cfg.delay_seed = BigInt(value).toString();
        break;
      case 'pace_reaction':
        cfg.pace_reaction = yesNo(value, line, key);
        break;
      case 'clock_offset':
        cfg.clock_offset_ms = parseMs(value, line, key, -86400000, 86400000);
        break;
      case 'max_clock_uncertainty':
        cfg.max_clock_uncertainty_ms = parseMs(value, line, key, 1, 10000);
        break;
      case 'clock_uncertainty':
        if (value === 'refuse')
          cfg.warn_uncertain_clock = false;
        else if (value === 'warn')
          cfg.warn_uncertain_clock = true;
        else
          strategyError(line, `clock_uncertainty must be refuse or warn, got '${value}'`);
        break;
      case 'resync_before':
        cfg.resync_before_ms = value === 'no' ? null : parseMs(value, line, key, 100, 3600000);
        break;
      case 'prepare_before':
        cfg.prepare_before_ms = value === 'no' ? null : parseMs(value, line, key, 100, 3600000);
        break;
      case 'notify':
        notify = value;
        notifyLine = line;
        break;
      case 'notify_body':
        notifyBody = value;
        bodyLine = line;
        break;
      case 'notify_on': {
        const on = tryParseNoticeFilter(value);
        if (on.why) strategyError(line, on.why);
        cfg.notify_on = NOTICE_KINDS.filter((k) => on.kinds.has(k));
        break;
      }
      case 'mode':
        if (value === 'buy')
          cfg.mode = 'buy';
        else if (value === 'dry-run' || value === 'dry_run')
          cfg.mode = 'dry-run';
        else if (value === 'monitor')
          cfg.mode = 'monitor';
        else
          strategyError(line, `mode must be buy, dry-run or monitor, got '${value.slice(0, 32)}'`);
        break;
      case 'max_refusals': {
        const n = parseNumber(value, line, key);
        if (!(n >= 1 && n <= 100) || n !== Math.floor(n)) {
          strategyError(line, `max_refusals must be a whole number in [1, 100], got ${value}`);
        }
        cfg.max_refusals = n;
        break;
      }
      case 'backoff': {
        const dots = value.indexOf('..');
        if (dots < 0) {
          strategyError(
              line,
              'backoff must be two durations like 1s..60s (the first back-off..the longest), ' +
                  `got '${value.slice(0, 64)}'`);
        }
        const lo = parseDuration(trim(value.slice(0, dots)), line, key);
        const hi = parseDuration(trim(value.slice(dots + 2)), line, key);
        if (lo > hi) {
          strategyError(
              line, `backoff has its first back-off above the longest, got '${value.slice(0, 64)}'`);
        }
        if (hi > 24 * 3600000) strategyError(line, `backoff must be at most 24h, got '${value.slice(0, 64)}'`);
        cfg.backoff_ms = [lo, hi];
        break;
      }
      case 'burst': {
        const b = parseNumber(value, line, key);
        if (!(b >= 1 && b <= 100)) strategyError(line, `burst must be in [1, 100], got ${value}`);
        cfg.burst = b;
        break;
      }
      default:
        strategyError(
            line,
            `unknown key '${key}' (known: want, max_price, quantity, partial, retries, deadline, ` +
                'pace, burst, start, delay, delay_seed, pace_reaction, clock_offset, ' +
                'max_clock_uncertainty, clock_uncertainty, resync_before, prepare_before, notify, ' +
                `notify_body, notify_on, mode, max_refusals, backoff, profile, and a site ` +
                `profile's: ${PROFILE_KEYS})`);
    }
  });
  if (notifyBody !== '' && notify === '') {
    strategyError(bodyLine, 'notify_body needs notify (the URL it is posted to)');
  }
  if (notify !== '') {
    const w = tryParseWebhook(notify, notifyBody);
    if (w.why) strategyError(notifyLine, w.why);
    cfg.notify = {type: w.type, url: fromBytes(w.url)};
  }
  if (profileSeen.size > 0) {
    if (cfg.profile_file !== '') {
      const first = [...profileSeen.keys()].sort()[0];
      strategyError(
          profileLine,
          `profile names a file, and profile keys stand in this file too (line ${
              profileSeen.get(first)}): ` +
              'keep them in one place');
    }
    checkProfile(profile, profileSeen, 'strategy');
    cfg.profile = profile;
  }
  if (!sawWant) throw new ParseError('strategy: no \'want\' line: nothing to buy', 0);
  return cfg;
}

// An unknown (NaN) price ranks after every known one.
function cheaper(a, b) {
  if (Number.isNaN(a)) return false;
  return Number.isNaN(b) || a < b;
}

/**
 * The decision of priority_strategy: the first wanted entry (in priority
 * order) with an in-stock offer at or under the price cap; the cheapest
 * offer within a wanted category. `offers`: [{ sku, name, category, price
 * (NaN or null: unknown), stock }]. Returns { sku, quantity, price,
 * requested } or null.
 */
export function decide(cfg, offers) {
  for (const w of cfg.want) {
    let best = null;
    for (const o of offers) {
      const price = o.price === null || o.price === undefined ? NaN : o.price;
      if (o.stock <= 0 || (!cfg.partial && o.stock < cfg.quantity)) continue;
      if (cfg.max_price !== null && !(price <= cfg.max_price)) continue;
      const match = w.kind === 'sku' ? o.sku === w.value : o.category === w.value;
      if (match && (best === null || cheaper(price, best.price))) best = {...o, price};
    }
    if (best !== null) {
      return {
        sku: best.sku,
        quantity: Math.min(cfg.quantity, best.stock),
        price: best.price,
        requested: cfg.quantity
      };
    }
  }
  return null;
}

const MASK64 = 0xffffffffffffffffn;

/**
 * The pauses before the actions, as the grabber draws them: splitmix64
 * seeded by `delay_seed` (else `inputSeed`), each uniform in [min, max] ms.
 * Returns a function giving the next pause in ms.
 */
export function pauses(cfg, inputSeed = 1) {
  let state = BigInt(cfg.delay_seed ?? inputSeed) & MASK64;
  const span = BigInt(cfg.delay.max_ms - cfg.delay.min_ms) + 1n;
  return () => {
    state = (state + 0x9e3779b97f4a7c15n) & MASK64;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    z ^= z >> 31n;
    return cfg.delay.min_ms + Number(z % span);
  };
}

/**
 * What a run does with a page as it stands: "wait" (before the start, or
 * not in stock), "watch" (monitor mode: choose nothing), "none" (in stock,
 * but nothing wanted fits), "press" (buy) or "would-press" (dry-run, which
 * stops before the press). `page`: { status, offers }; `nowMs`: the shop's
 * time in ms since the epoch. The site profile is the strategy's own, else
 * `profile`, else the demo shop's.
 */
export function plan(cfg, page, nowMs, profile = null) {
  const p = cfg.profile ?? profile ?? defaultProfile();
  if (cfg.start !== null && nowMs < cfg.start.at_ms) return {action: 'wait', decision: null};
  if (!saysInStock(p, page.status ?? '')) return {action: 'wait', decision: null};
  if (cfg.mode === 'monitor') return {action: 'watch', decision: null};
  const decision = decide(cfg, page.offers ?? []);
  if (decision === null) return {action: 'none', decision: null};
  return {action: cfg.mode === 'dry-run' ? 'would-press' : 'press', decision};
}
