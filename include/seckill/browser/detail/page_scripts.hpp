#pragma once
/// @file
/// @brief The JavaScript a page sends to the browser. Each script is the
///        source of one function, called with Runtime.callFunctionOn: every
///        value (a selector, a text, a box) arrives as a call argument,
///        never as part of the source, so no value can change the code.
///        Standard library only.

#include <string_view>

namespace seckill::browser::detail::scripts {

/// (sel, prev) -> {state: 'missing' | 'hidden' | 'moving' | 'disabled'}
///              | {state: 'covered', by} | {state: 'ok', x, y, width, height}.
/// Checks the first element matching `sel` for actionability. Stable means the
/// same box one animation frame apart, or the same box as `prev` ([x, y,
/// width, height], centre form), seen stable by an earlier check.
inline constexpr std::string_view actionability = R"js(async (sel, prev) => {
  const el = document.querySelector(sel);
  if (!el || !el.isConnected) return {state: 'missing'};
  const box = () => {
    const r = el.getBoundingClientRect();
    return [r.left + r.width / 2, r.top + r.height / 2, r.width, r.height];
  };
  const st = getComputedStyle(el);
  let a = box();
  if (st.visibility !== 'visible' || st.display === 'none' || a[2] === 0 || a[3] === 0) return {state: 'hidden'};
  if (a[0] + a[2] / 2 <= 0 || a[1] + a[3] / 2 <= 0 || a[0] - a[2] / 2 >= innerWidth || a[1] - a[3] / 2 >= innerHeight) {
    el.scrollIntoView({block: 'center', inline: 'center'});
    a = box();
  }
  let b = a;
  if (!Array.isArray(prev) || a.some((v, i) => v !== prev[i])) {
    await new Promise(r => {
      let done = false;
      requestAnimationFrame(() => { done = true; r(); });
      setTimeout(() => { if (!done) r(); }, 50);
    });
    if (!el.isConnected) return {state: 'missing'};
    b = box();
    if (a.some((v, i) => v !== b[i])) return {state: 'moving'};
  }
  if (el.disabled === true || el.getAttribute('aria-disabled') === 'true' ||
      (el.closest && el.closest('fieldset[disabled]'))) return {state: 'disabled'};
  const x = b[0], y = b[1];
  const hit = document.elementFromPoint(x, y);
  if (!hit || (hit !== el && !el.contains(hit)))
    return {state: 'covered', by: hit ? hit.tagName.toLowerCase() + (hit.id ? '#' + hit.id : '') : ''};
  return {state: 'ok', x, y, width: b[2], height: b[3]};
})js";

/// (sel, value) -> 'missing' | 'hidden' | 'disabled' | 'not-select' | 'no-option'
///               | 'option-disabled' | {status: 'ok', keys, key}.
/// Prepares picking the option of a native select whose value (or else label)
/// is `value` with the keyboard, after the checks a choice without a pointer
/// needs (attached, visible, enabled): focuses the select and says how many
/// presses of which arrow key reach the option (0 when it is selected). The
/// keys themselves are trusted input (Input.dispatchKeyEvent); this script
/// sets no value and dispatches no event.
inline constexpr std::string_view select_prepare = R"js((sel, value) => {
  const el = document.querySelector(sel);
  if (!el || !el.isConnected) return 'missing';
  const st = getComputedStyle(el), r = el.getBoundingClientRect();
  if (st.visibility !== 'visible' || st.display === 'none' || r.width === 0 || r.height === 0) return 'hidden';
  if (el.disabled === true || el.getAttribute('aria-disabled') === 'true' ||
      (el.closest && el.closest('fieldset[disabled]'))) return 'disabled';
  if (el.tagName !== 'SELECT') return 'not-select';
  const opts = Array.from(el.options);
  const opt = opts.find(o => o.value === value) || opts.find(o => o.label === value);
  if (!opt) return 'no-option';
  if (opt.disabled) return 'option-disabled';
  if (document.activeElement !== el) el.focus();
  const to = opt.index, from = el.selectedIndex;
  if (from === to) return {status: 'ok', keys: 0, key: 'ArrowDown'};
  // Arrow keys skip disabled options: count the enabled ones on the way.
  const down = from < to;
  const keys = opts.filter(o => !o.disabled &&
                                (down ? o.index > from && o.index <= to : o.index >= to && o.index < from)).length;
  return {status: 'ok', keys, key: down ? 'ArrowDown' : 'ArrowUp'};
})js";

/// (sel) -> 'missing' | 'hidden' | 'disabled' | 'not-input' | 'ok'.
/// Prepares typing into an input after the same checks (a read-only input
/// counts as disabled): focuses it. The text itself is trusted input (select
/// all, Input.insertText, Tab); this script sets no value and dispatches no
/// event.
inline constexpr std::string_view fill_prepare = R"js((sel) => {
  const el = document.querySelector(sel);
  if (!el || !el.isConnected) return 'missing';
  const st = getComputedStyle(el), r = el.getBoundingClientRect();
  if (st.visibility !== 'visible' || st.display === 'none' || r.width === 0 || r.height === 0) return 'hidden';
  if (el.disabled === true || el.getAttribute('aria-disabled') === 'true' ||
      (el.closest && el.closest('fieldset[disabled]'))) return 'disabled';
  if (!('value' in el) || el.tagName === 'SELECT' || el.tagName === 'BUTTON') return 'not-input';
  if (el.readOnly) return 'disabled';
  if (document.activeElement !== el) el.focus();
  return 'ok';
})js";

/// (sel) -> the value of the first element matching `sel`, or null.
inline constexpr std::string_view read_value = R"js((sel) => {
  const el = document.querySelector(sel);
  return el && 'value' in el ? String(el.value) : null;
})js";

/// (sel, value) -> true when the select's chosen option is the one whose
/// value (or else label) is `value`.
inline constexpr std::string_view option_chosen = R"js((sel, value) => {
  const el = document.querySelector(sel);
  if (!el || el.tagName !== 'SELECT' || el.selectedIndex < 0) return false;
  const o = el.options[el.selectedIndex];
  const opts = Array.from(el.options);
  const want = opts.find(x => x.value === value) || opts.find(x => x.label === value);
  return o === want;
})js";

/// (id, binding, sel) -> true. Installs (once per document and id) a
/// MutationObserver reporting the first match of `sel` through the function
/// `globalThis[binding]` whenever its presence or its text changes, and once
/// when the document's DOM is parsed (`initial`). Throws on a bad selector.
inline constexpr std::string_view install_observer = R"js((id, binding, sel) => {
  const report = globalThis[binding];
  if (typeof report !== 'function') throw new Error('no report binding in this world');
  document.createDocumentFragment().querySelector(sel);
  const reg = globalThis.__seckill_observers || (globalThis.__seckill_observers = {});
  if (reg[id]) return true;
  reg[id] = {last: undefined, observer: null};
  const check = (initial) => {
    const el = document.querySelector(sel);
    const s = el ? {present: true, text: (el.textContent || '').trim()} : {present: false, text: ''};
    const key = (s.present ? '1' : '0') + s.text;
    if (key === reg[id].last) return;
    reg[id].last = key;
    report(JSON.stringify({id, present: s.present, text: s.text, initial}));
  };
  const start = () => {
    if (!reg[id]) return;
    check(true);
    reg[id].observer = new MutationObserver(() => check(false));
    reg[id].observer.observe(document, {subtree: true, childList: true, characterData: true, attributes: true});
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start, {once: true});
  else start();
  return true;
})js";

/// (id) -> true. Disconnects and forgets observer `id`.
inline constexpr std::string_view remove_observer = R"js((id) => {
  const reg = globalThis.__seckill_observers;
  if (reg && reg[id]) {
    if (reg[id].observer) reg[id].observer.disconnect();
    delete reg[id];
  }
  return true;
})js";

}  // namespace seckill::browser::detail::scripts
