// The shared table of strategy cases (tests/browser/strategy_cases.json)
// through the extension's JavaScript: lib/strategy.js and lib/profile.js
// must read, refuse and decide every case as the C++ does
// (tests/browser/unit-strategy_cases.cpp runs the same table).
// Run: node --test extension/test/
import assert from 'node:assert/strict';
import {readFileSync} from 'node:fs';
import {test} from 'node:test';

import {defaultProfile, parseProfile} from '../lib/profile.js';
import {parseTimeLeft, tryParseSaleTime} from '../lib/sale_time.js';
import {ParseError, parseStrategy, pauses, plan, saysInStock} from '../lib/strategy.js';

const table = JSON.parse(
    readFileSync(new URL('../../tests/browser/strategy_cases.json', import.meta.url), 'utf8'),
);

// A strategy as the C++ test writes it: the notify's URL only.
function strategyJson(cfg) {
  return {...cfg, notify: cfg.notify === null ? null : {url: cfg.notify.url}};
}

function checkSubset(what, actual, expected) {
  for (const [key, value] of Object.entries(expected)) {
    assert.ok(key in actual, `${what}.${key} missing`);
    assert.deepStrictEqual(actual[key], value, `${what}.${key}`);
  }
}

test('the table has at least 40 cases, each named once', () => {
  assert.ok(table.cases.length >= 40);
  assert.equal(new Set(table.cases.map((c) => c.name)).size, table.cases.length);
});

for (const c of table.cases) {
  test(c.name, () => {
    const expect = c.expect;
    let cfg = null;
    let profile = null;
    let error = '';
    try {
      if ('strategy' in c) cfg = parseStrategy(c.strategy);
      if ('profile' in c) profile = parseProfile(c.profile);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      error = e.message;
    }
    if ('countdown' in c) assert.equal(parseTimeLeft(c.countdown), expect.time_left_ms);
    if ('error' in expect) {
      assert.equal(error, expect.error);
      return;
    }
    assert.equal(error, '');
    if ('config' in expect) checkSubset('config', strategyJson(cfg), expect.config);
    const used = cfg?.profile ?? profile ?? defaultProfile();
    if ('profile' in expect) checkSubset('profile', used, expect.profile);
    if ('pauses' in expect) {
      const next = pauses(cfg, c.input_seed ?? 1);
      assert.deepStrictEqual(expect.pauses.map(() => next()), expect.pauses);
    }
    if ('page' in c) {
      const now = 'now' in c ? tryParseSaleTime(c.now).at_ms : Number.POSITIVE_INFINITY;
      const p = plan(cfg, c.page, now, profile);
      if ('in_stock' in expect) assert.equal(saysInStock(used, c.page.status), expect.in_stock);
      if ('action' in expect) assert.equal(p.action, expect.action);
      if ('decision' in expect) {
        const d = p.decision === null ?
            null :
            {...p.decision, price: Number.isNaN(p.decision.price) ? null : p.decision.price};
        assert.deepStrictEqual(d, expect.decision);
      }
    }
  });
}

test('a refusal carries its line', () => {
  assert.throws(
      () => parseStrategy('want = sku:a\n\nquantity = 0'),
      (e) => e instanceof ParseError && e.line === 3);
  assert.throws(() => parseStrategy('# nothing'), (e) => e instanceof ParseError && e.line === 0);
});
