// A site profile: where a shop page shows the stock status and its texts,
// the offers, the quantity, the buy button and how success shows. The same
// keys, defaults, checks and messages as include/seckill/browser/site_profile.hpp
// (parse_profile); the field names are those of the C++ struct site_profile.
// Plain ES module: no dependencies, no eval.

import {asciiLower, forEachKey, fromBytes, isAlnum, isDigit, lineError, ParseError, toBytes, trim,} from './key_value.js';

/** The keys a profile may have, as messages list them. */
export const PROFILE_KEYS =
    'status, in_stock, out_of_stock, offers, offer.sku, offer.name, offer.price, offer.stock, ' +
    'offer.category, offer.unavailable, offer.click, quantity.input, quantity.plus, ' +
    'quantity.minus, ' +
    'quantity.value, buy, result, success, success_url, success_response, logged_in, ' +
    'order_response, throttled, throttled_text, watch, ' +
    'reload_every, countdown, clock, verification, verification_text, stock_response, stock_json, ' +
    'stock_text, ' +
    'stock_offers, stock_offer.sku, stock_offer.stock, stock_offer.price, stock_confirm';

function noField() {
  return {child: '', attribute: '', given: false};
}

function noPath() {
  return {steps: [], text: ''};
}

/** The demo shop's profile (site_profile's defaults). */
export function defaultProfile() {
  return {
    status: '.stock-status',
    in_stock: ['in stock'],
    out_of_stock: ['out of stock'],
    offers: 'select',
    offer_selector: '#sku',
    sku: noField(),
    name: noField(),
    price: noField(),
    stock: noField(),
    category: noField(),
    unavailable: '',
    choose_target: '',
    quantity: '#quantity',
    quantity_plus: '',
    quantity_minus: '',
    quantity_value: '',
    buy: '#buy',
    result: '.order-result',
    success: ['confirmed'],
    success_url: '',
    success_response: '',
    logged_in: '',
    watch: 'live',
    reload_every_ms: 500,
    countdown: '',
    clock: '',
    verification: '',
    verification_text: [],
    verification_off: false,
    stock_response: '',
    stock_json: noPath(),
    stock_json_given: false,
    stock_text: [],
    stock_offers: noPath(),
    stock_offers_given: false,
    offer_sku_path: noPath(),
    offer_stock_path: noPath(),
    offer_price_path: noPath(),
    stock_confirm: 'response',
  };
}

// `a | b | c`: each text trimmed, none empty.
function parseTexts(value, source, line, key) {
  const out = [];
  for (const part of value.split('|')) {
    const item = trim(part);
    if (item === '') {
      lineError(source, line, `${key} is texts separated by |, got an empty one in '${value}'`);
    }
    out.push(fromBytes(item));
  }
  return out;
}

// `reload_every`: a whole number of ms or s (`500ms`, `2s`) in [50 ms, 1 h].
function parseInterval(value, source, line, key) {
  let digits = 0;
  while (digits < value.length && isDigit(value[digits])) ++digits;
  const unit = trim(value.slice(digits));
  const n = digits > 0 && digits <= 9 ? Number(value.slice(0, digits)) : -1;
  let ms = -1;
  if (n >= 0 && unit === 'ms') ms = n;
  if (n >= 0 && unit === 's') ms = n * 1000;
  if (ms < 0) {
    lineError(
        source, line, `${key} must be a whole number of ms or s like 500ms or 2s, got '${value}'`);
  }
  if (ms < 50 || ms > 3600000) {
    lineError(source, line, `${key} must be in [50ms, 3600s], got '${value}'`);
  }
  return ms;
}

function attributeName(a) {
  if (a === '') return false;
  for (const c of a) {
    if (!(isAlnum(c) || c === '-' || c === '_' || c === ':' || c === '.')) return false;
  }
  return true;
}

// An offer field: `text`, `@attr`, `<selector>` or `<selector> @attr`.
function parseField(value, source, line, key) {
  const f = {child: '', attribute: '', given: true};
  if (value === 'text') return f;
  let child = value;
  let attr = '';
  let hasAttr = true;
  const at = value.lastIndexOf(' @');
  if (value[0] === '@') {
    child = '';
    attr = value.slice(1);
  } else if (at >= 0) {
    child = trim(value.slice(0, at));
    attr = value.slice(at + 2);
  } else {
    hasAttr = false;
  }
  if (hasAttr && !attributeName(attr)) {
    lineError(
        source, line,
        `${key} names no attribute after @ (letters, digits, - _ : .), got '${value}'`);
  }
  f.child = fromBytes(child);
  f.attribute = fromBytes(attr);
  return f;
}

// A selector, each part around `>>>` (into a shadow root or a frame) not empty.
function parseSelector(value, source, line, key) {
  for (const part of value.split('>>>')) {
    if (trim(part) === '') {
      lineError(
          source, line, `${key} has an empty part around >>> (host >>> inner), got '${value}'`);
    }
  }
  return fromBytes(value);
}

function nameChar(c) {
  return isAlnum(c) || c === '_' || c === '-' || c.charCodeAt(0) >= 0x80;
}

/** A JSON path: an optional `$`, then members, indexes `[0]` and `[*]`. */
function parseJsonPath(value, source, line, key) {
  const out = {steps: [], text: fromBytes(value)};
  const bad = (why) => lineError(
      source,
      line,
      `${key} must be a JSON path like $.items[*].stock or data.sku.available (${why}), got '${
          value}'`,
  );
  let i = 0;
  if (i < value.length && value[i] === '$') ++i;
  let needName = i === 0;
  while (i < value.length) {
    const c = value[i];
    if (c === '.' || needName) {
      if (c === '.') ++i;
      const from = i;
      while (i < value.length && nameChar(value[i])) ++i;
      if (i === from) bad('an empty member name');
      out.steps.push({kind: 'member', name: fromBytes(value.slice(from, i)), index: 0});
      needName = false;
    } else if (c === '[') {
      const close = value.indexOf(']', i);
      if (close < 0) bad('a [ without ]');
      const inside = value.slice(i + 1, close);
      if (inside === '*') {
        out.steps.push({kind: 'each', name: '', index: 0});
      } else {
        if (inside === '' || inside.length > 9 || ![...inside].every(isDigit)) {
          bad('an index is a whole number or *');
        }
        out.steps.push({kind: 'index', name: '', index: Number(inside)});
      }
      i = close + 1;
    } else {
      bad(`'${value[i]}' where . or [ was expected`);
    }
  }
  return out;
}

/**
 * Applies one profile key (byte strings) to `p`; false when `key` is no
 * profile key. `seen` maps each key seen to its line.
 */
export function applyProfileKey(p, seen, key, value, line, source) {
  const selector = () => parseSelector(value, source, line, key);
  const field = () => parseField(value, source, line, key);
  const texts = () => parseTexts(value, source, line, key);
  const path = () => parseJsonPath(value, source, line, key);
  switch (key) {
    case 'status':
      p.status = selector();
      break;
    case 'in_stock':
      p.in_stock = texts();
      break;
    case 'out_of_stock':
      p.out_of_stock = texts();
      break;
    case 'offers': {
      const space = value.search(/[ \t]/);
      const layout = space < 0 ? value : value.slice(0, space);
      const sel = space < 0 ? '' : trim(value.slice(space));
      if ((layout !== 'select' && layout !== 'list') || sel === '') {
        lineError(
            source, line,
            `offers must be 'select <selector>' or 'list <selector>', got '${value}'`);
      }
      p.offers = layout;
      p.offer_selector = parseSelector(sel, source, line, key);
      break;
    }
    case 'offer.sku':
      p.sku = field();
      break;
    case 'offer.name':
      p.name = field();
      break;
    case 'offer.price':
      p.price = field();
      break;
    case 'offer.stock':
      p.stock = field();
      break;
    case 'offer.category':
      p.category = field();
      break;
    case 'offer.unavailable':
      p.unavailable = selector();
      break;
    case 'offer.click':
      p.choose_target = selector();
      break;
    case 'quantity.input':
      p.quantity = value === 'none' ? '' : selector();
      break;
    case 'quantity.plus':
      p.quantity_plus = selector();
      break;
    case 'quantity.minus':
      p.quantity_minus = selector();
      break;
    case 'quantity.value':
      p.quantity_value = selector();
      break;
    case 'buy':
      p.buy = selector();
      break;
    case 'result':
      p.result = selector();
      break;
    case 'success':
      p.success = texts();
      break;
    case 'success_url':
      p.success_url = fromBytes(value);
      break;
    case 'success_response':
      p.success_response = fromBytes(value);
      break;
    case 'logged_in':
      p.logged_in = selector();
      break;
    case 'order_response':
      if (/[ \t]/.test(value)) {
        lineError(
            source, line,
            `order_response must be a part of the order's URL (no spaces), got '${
                value.slice(0, 64)}'`);
      }
      p.order_response = fromBytes(value);
      break;
    case 'throttled':
      p.throttled = selector();
      break;
    case 'throttled_text':
      p.throttled_text = texts();
      break;
    case 'watch':
      if (value !== 'live' && value !== 'reload') {
        lineError(source, line, `watch must be live or reload, got '${value}'`);
      }
      p.watch = value;
      break;
    case 'reload_every':
      p.reload_every_ms = parseInterval(value, source, line, key);
      break;
    case 'countdown':
      p.countdown = selector();
      break;
    case 'clock':
      p.clock = selector();
      break;
    case 'verification':
      p.verification_off = value === 'none';
      if (!p.verification_off) p.verification = selector();
      break;
    case 'verification_text':
      p.verification_text = texts();
      break;
    case 'stock_response':
      p.stock_response = fromBytes(value);
      break;
    case 'stock_json':
      p.stock_json = path();
      p.stock_json_given = true;
      break;
    case 'stock_text':
      p.stock_text = texts();
      break;
    case 'stock_offers':
      p.stock_offers = path();
      p.stock_offers_given = true;
      break;
    case 'stock_offer.sku':
      p.offer_sku_path = path();
      break;
    case 'stock_offer.stock':
      p.offer_stock_path = path();
      break;
    case 'stock_offer.price':
      p.offer_price_path = path();
      break;
    case 'stock_confirm':
      if (value !== 'response' && value !== 'page') {
        lineError(source, line, `stock_confirm must be response or page, got '${value}'`);
      }
      p.stock_confirm = value;
      break;
    default:
      return false;
  }
  if (!seen.has(key)) seen.set(key, line);
  return true;
}

/** The checks of the profile as a whole, naming the line of the key at fault. */
export function checkProfile(p, seen, source) {
  const has = (k) => seen.has(k);
  const at = (k) => seen.get(k) ?? 0;
  if (p.offers === 'list' && !has('offer.sku')) {
    lineError(
        source, at('offers'), 'offers = list needs offer.sku (where each offer\'s SKU is read)');
  }
  if (p.offers === 'select') {
    for (const k
             of ['offer.sku', 'offer.name', 'offer.price', 'offer.stock', 'offer.category',
                 'offer.unavailable', 'offer.click']) {
      if (has(k)) {
        lineError(
            source, at(k),
            `${k} applies to offers = list only (a select's options give value, ` +
                'label and data-price, data-stock, data-category)');
      }
    }
  }
  const buttons = has('quantity.plus') || has('quantity.minus');
  if (buttons && has('quantity.input')) {
    lineError(
        source, at('quantity.input'),
        'quantity.input (an input) and quantity.plus / quantity.minus (buttons) exclude each other');
  }
  if (buttons && !has('quantity.plus')) {
    lineError(source, at('quantity.minus'), 'quantity.minus needs quantity.plus');
  }
  if (buttons && !has('quantity.value')) {
    lineError(
        source, at('quantity.plus'), 'quantity.plus needs quantity.value (where the count shows)');
  }
  if (!buttons && has('quantity.value')) {
    lineError(source, at('quantity.value'), 'quantity.value needs quantity.plus');
  }
  if (has('reload_every') && p.watch !== 'reload') {
    lineError(source, at('reload_every'), 'reload_every needs watch = reload');
  }
  if (p.verification_off && has('verification_text')) {
    lineError(
        source, at('verification_text'),
        'verification_text is checked for nothing: verification = none turns checking off');
  }
  if (buttons) p.quantity = '';
  for (const k of ['stock_json', 'stock_text', 'stock_offers', 'stock_confirm']) {
    if (has(k) && !has('stock_response')) {
      lineError(source, at(k), `${k} needs stock_response (which responses carry the stock)`);
    }
  }
  if (has('stock_response') && !has('stock_json') && !has('stock_text') && !has('stock_offers')) {
    lineError(
        source, at('stock_response'),
        'stock_response needs stock_json, stock_text or stock_offers (what in a response says in stock)');
  }
  for (const k of ['stock_offer.sku', 'stock_offer.stock', 'stock_offer.price']) {
    if (has(k) && !has('stock_offers')) {
      lineError(source, at(k), `${k} needs stock_offers (where each offer is)`);
    }
  }
  if (has('stock_offers') && !has('stock_offer.sku')) {
    lineError(
        source, at('stock_offers'),
        'stock_offers needs stock_offer.sku (where each offer\'s SKU is)');
  }
}

/**
 * Parses a site profile's text. Every key is optional; an absent one keeps
 * the demo shop's value. Throws a ParseError naming the line, the key and the
 * value at fault, worded as parse_profile words it.
 */
export function parseProfile(text) {
  const p = defaultProfile();
  const seen = new Map();
  const source = 'profile';
  forEachKey(toBytes(text), source, (line, key, value) => {
    if (!applyProfileKey(p, seen, key, value, line, source)) {
      lineError(source, line, `unknown key '${key}' (known: ${PROFILE_KEYS})`);
    }
  });
  checkProfile(p, seen, source);
  return p;
}

function containsNoCase(hay, needle) {
  return needle === '' || asciiLower(hay).includes(asciiLower(needle));
}

/** Whether `hay` contains one of `needles`, ASCII letters in any case. */
export function containsAny(hay, needles) {
  return needles.some((n) => containsNoCase(hay, n));
}

/**
 * Whether a status text says "in stock" by the profile: no out-of-stock text
 * in it, and one of the in-stock texts (any text, when none is given).
 */
export function saysInStock(p, text) {
  if (containsAny(text, p.out_of_stock)) return false;
  return p.in_stock.length === 0 ? text !== '' : containsAny(text, p.in_stock);
}

export {ParseError};
