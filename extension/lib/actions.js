// Execution on a tab: the actionability checks run by the content script
// (content.js `check`, the CDP backend's script), then trusted input
// through chrome.debugger (input.js). Exported for the native and the
// standalone modes alike.

import {ProtocolError} from './protocol.js';

const POLL_MS = 30;
const READBACK_MS = 300;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Waits until the first element matching `selector` is actionable (attached,
// visible, stable, enabled, not covered) and returns its box; after
// `timeout_ms`, element_not_actionable when it matched, else element_not_found.
// `prev`: a box ([x, y, width, height], centre form) an earlier check found
// stable; the first look takes the element as still if it is exactly there
// (no animation frame to wait for), a second look waits for a frame.
export async function waitActionable(link, tabId, selector, timeoutMs, prev = null) {
  const until = Date.now() + timeoutMs;
  let matched = false, last = '';
  for (;;) {
    const left = until - Date.now();
    const r = await link.request(tabId, 'check', [selector, prev], Math.max(left, READBACK_MS) + 1000);
    prev = null;
    if (r && r.state === 'ok') return r;
    matched = !!r && r.state !== 'missing';
    last = r ? r.state + (r.by ? ' by ' + r.by : '') : 'no answer';
    if (Date.now() + POLL_MS > until) break;
    await sleep(POLL_MS);
  }
  if (matched) throw new ProtocolError('element_not_actionable', selector + ' is not actionable: ' + last);
  throw new ProtocolError('element_not_found', 'no element matches ' + selector);
}

// A trusted click on `selector` once it is actionable. `o`: {move_steps,
// press_ms, press_jitter_ms, path_jitter, timeout_ms}; `prev` as for
// waitActionable.
export async function click(link, input, tabId, selector, o, prev = null) {
  const box = await waitActionable(link, tabId, selector, o.timeout_ms, prev);
  await input.click(box, o);
}

// Runs a preparing function until it says ok or `until` passes. As the CDP
// backend (page_replies.hpp script_status): missing, hidden and disabled are
// waited out; no-option is element_not_found, option-disabled
// element_not_actionable, not-select / not-input invalid_argument.
async function prepare(link, tabId, fn, args, until) {
  let matched = false;
  for (;;) {
    const v = await link.request(tabId, fn, args, Math.max(until - Date.now(), READBACK_MS) + 1000);
    const status = v && typeof v === 'object' && 'status' in v ? v.status : v;
    if (status === 'ok') return v;
    if (status === 'no-option') throw new ProtocolError('element_not_found', 'no option ' + args[1] + ' in ' + args[0]);
    if (status === 'option-disabled') throw new ProtocolError('element_not_actionable', 'the option ' + args[1] + ' is disabled');
    if (status === 'not-select' || status === 'not-input') throw new ProtocolError('invalid_argument', args[0] + ': ' + status);
    if (status !== 'missing' && status !== 'hidden' && status !== 'disabled') throw new ProtocolError('protocol_error', fn + ' said ' + status);
    if (status !== 'missing') matched = true;
    if (Date.now() + POLL_MS > until) {
      if (matched) throw new ProtocolError('element_not_actionable', args[0] + ': ' + status);
      throw new ProtocolError('element_not_found', 'no element matches ' + args[0]);
    }
    await sleep(POLL_MS);
  }
}

// Picks a select's option (by value, else label) with trusted arrow keys.
export async function select(link, input, tabId, selector, value, timeoutMs) {
  const until = Date.now() + timeoutMs;
  for (let round = 0; ; ++round) {
    const by = round === 0 ? until : Math.max(until, Date.now() + READBACK_MS);
    const v = await prepare(link, tabId, 'select_prepare', [selector, value], by);
    if (v.keys === 0) return;
    if (round === 3) break;
    await input.arrows(v.key, v.keys);
  }
  throw new ProtocolError('element_not_actionable', 'the keys did not reach the option ' + value);
}

// Types `text` into an input with trusted keys and reads it back.
export async function fill(link, input, tabId, selector, text, timeoutMs) {
  const until = Date.now() + timeoutMs;
  const v = await prepare(link, tabId, 'fill_prepare', [selector, text], until);
  if (v.same) return;
  await input.type(text);
  const now = await link.request(tabId, 'read_value', [selector], Math.max(until - Date.now(), READBACK_MS));
  if (now !== text) throw new ProtocolError('element_not_actionable', 'the page kept another text in ' + selector);
}

// Reloads the tab and waits for its load (status complete).
export function reload(tabId, timeoutMs) {
  return new Promise((resolve, reject) => {
    let started = false;
    const t = setTimeout(() => {
      chrome.tabs.onUpdated.removeListener(on);
      reject(new ProtocolError('timed_out', 'the reload did not finish within ' + timeoutMs + ' ms'));
    }, timeoutMs);
    const on = (id, info) => {
      if (id !== tabId) return;
      if (info.status === 'loading') started = true;
      if (started && info.status === 'complete') {
        clearTimeout(t);
        chrome.tabs.onUpdated.removeListener(on);
        resolve();
      }
    };
    chrome.tabs.onUpdated.addListener(on);
    chrome.tabs.reload(tabId, {bypassCache: false}).catch((e) => {
      clearTimeout(t);
      chrome.tabs.onUpdated.removeListener(on);
      reject(new ProtocolError('browser_closed', 'the tab is gone: ' + e.message));
    });
  });
}
