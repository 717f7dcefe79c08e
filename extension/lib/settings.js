// What the options page saves: a strategy file's text and a site profile's
// text, checked with the same parsers (and the same messages) as the C++
// grabber's. chrome.storage.local keeps them as typed, under "strategy" and
// "profile"; standalone mode reads them back with loadSettings().
// Plain ES module: no eval; node imports it too (extension/test).

import {parseProfile} from './profile.js';
import {ParseError, parseStrategy} from './strategy.js';

/**
 * Checks both texts. Returns {ok, strategy, profile, problems}: the parsed
 * strategy and the profile it runs with (its own keys, else the profile
 * text's, else the demo shop's: null), and each problem as {field
 * ('strategy' or 'profile'), line (0: the whole text), message}.
 */
export function checkSettings(strategyText, profileText) {
  const problems = [];
  let strategy = null;
  let profile = null;
  try {
    strategy = parseStrategy(strategyText);
  } catch (e) {
    if (!(e instanceof ParseError)) throw e;
    problems.push({field: 'strategy', line: e.line, message: e.message});
  }
  if (profileText.trim() !== '') {
    try {
      profile = parseProfile(profileText);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
      problems.push({field: 'profile', line: e.line, message: e.message});
    }
  }
  if (strategy !== null && strategy.profile !== null && profileText.trim() !== '') {
    problems.push({
      field: 'profile',
      line: 0,
      message: 'profile keys stand in the strategy and in the site profile: keep them in one place',
    });
  }
  if (strategy !== null && strategy.profile !== null) profile = strategy.profile;
  return {ok: problems.length === 0, strategy, profile, problems};
}

/** The saved texts and their check, from chrome.storage.local ({} when none are saved). */
export async function loadSettings(storage) {
  const got = await storage.get(['strategy', 'profile']);
  const strategyText = typeof got.strategy === 'string' ? got.strategy : '';
  const profileText = typeof got.profile === 'string' ? got.profile : '';
  return {strategyText, profileText, ...checkSettings(strategyText, profileText)};
}

/**
 * Saves both texts when they pass the checks; otherwise saves nothing (what
 * was saved before stays). Returns checkSettings' answer.
 */
export async function saveSettings(storage, strategyText, profileText) {
  const checked = checkSettings(strategyText, profileText);
  if (checked.ok) await storage.set({strategy: strategyText, profile: profileText});
  return checked;
}
