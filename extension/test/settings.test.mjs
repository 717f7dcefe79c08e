// The options page's checks and saving (lib/settings.js), over a Map in
// place of chrome.storage.local; the page itself is checked in Chromium by
// the browser integration tests.
import assert from 'node:assert/strict';
import {test} from 'node:test';

import {checkSettings, loadSettings, saveSettings} from '../lib/settings.js';

// chrome.storage.local's get/set, over a Map.
function memoryStorage() {
  const m = new Map();
  return {
    map: m,
    async get(keys) {
      const out = {};
      for (const k of keys)
        if (m.has(k)) out[k] = m.get(k);
      return out;
    },
    async set(items) {
      for (const [k, v] of Object.entries(items)) m.set(k, v);
    },
  };
}

test('good texts pass, with the profile they run with', () => {
  const c = checkSettings('want = sku:a\n', 'buy = #go\n');
  assert.equal(c.ok, true);
  assert.equal(c.profile.buy, '#go');
  const own = checkSettings('want = sku:a\nbuy = #mine\n', '');
  assert.equal(own.ok, true);
  assert.equal(own.profile.buy, '#mine');
  assert.equal(checkSettings('want = sku:a', '  \n').profile, null);
});

test('each text\'s problem is reported with its line and the C++ message', () => {
  const c = checkSettings('want = sku:a\nquantity = 0\n', '# ok\nwatch = sometimes\n');
  assert.equal(c.ok, false);
  assert.deepEqual(c.problems, [
    {
      field: 'strategy',
      line: 2,
      message: 'strategy line 2: quantity must be a whole number in [1, 1000], got 0',
    },
    {
      field: 'profile',
      line: 2,
      message: 'profile line 2: watch must be live or reload, got \'sometimes\''
    },
  ]);
  assert.deepEqual(checkSettings('', '').problems, [
    {field: 'strategy', line: 0, message: 'strategy: no \'want\' line: nothing to buy'},
  ]);
});

test('profile keys in both texts are refused', () => {
  const c = checkSettings('want = sku:a\nbuy = #x', 'buy = #y');
  assert.equal(c.ok, false);
  assert.match(c.problems[0].message, /keep them in one place/);
});

test('saving stores both texts only when they pass', async () => {
  const storage = memoryStorage();
  assert.equal((await saveSettings(storage, 'want = sku:a', 'buy = #b')).ok, true);
  assert.equal(storage.map.get('strategy'), 'want = sku:a');
  assert.equal(storage.map.get('profile'), 'buy = #b');
  const refused = await saveSettings(storage, 'want = sku:b\npace = 99', '');
  assert.equal(refused.ok, false);
  assert.equal(storage.map.get('strategy'), 'want = sku:a', 'a refused save loses nothing');
  const loaded = await loadSettings(storage);
  assert.equal(loaded.ok, true);
  assert.equal(loaded.strategyText, 'want = sku:a');
  assert.equal(loaded.strategy.want[0].value, 'a');
  const empty = await loadSettings(memoryStorage());
  assert.equal(empty.strategyText, '');
  assert.equal(empty.ok, false);
});
