#pragma once
/// @file
/// @brief The JavaScript a page sends to the browser. Each script is the
///        source of one function, called with Runtime.callFunctionOn: every
///        value (a selector, a text, a box) arrives as a call argument,
///        never as part of the source, so no value can change the code.
///        Standard library only.

#include <string>
#include <string_view>

namespace seckill::browser::detail::scripts {

/// What `deep<&script>()` puts in front of a script: selectors that reach
/// into open shadow roots and same-origin frames (`host >>> inner`: `inner`
/// in the shadow root of the element `host` finds, or in its document when
/// it is an iframe), and the geometry across frames. Defines find(sel) (the
/// first match or null), findAll(sel), roots(sel) (the documents and shadow
/// roots the selector passes through), styleOf(el), offset(el) (where el's
/// frame starts in the top viewport), hitAt(x, y) (the innermost element at
/// a top-viewport point, through shadow roots and frames), within(el, n)
/// (n is el or inside it, across shadow boundaries) and unready(el) (why el
/// cannot take keys: 'missing', 'hidden', 'disabled'; '' when it can).
inline constexpr std::string_view finder = R"js(
  const descend = (host) => host.shadowRoot ||
      ((host.tagName === 'IFRAME' || host.tagName === 'FRAME') ? host.contentDocument : null);
  const walk = (sel) => {
    const parts = String(sel).split('>>>').map(s => s.trim());
    const last = parts[parts.length - 1], seen = [document];
    let root = document;
    for (let i = 0; i < parts.length - 1; i++) {
      const host = root.querySelector(parts[i]);
      root = host ? descend(host) : null;
      if (!root) return {root: null, last, seen};
      seen.push(root);
    }
    return {root, last, seen};
  };
  const find = (sel) => { const w = walk(sel); return w.root ? w.root.querySelector(w.last) : null; };
  const findAll = (sel) => { const w = walk(sel); return w.root ? Array.from(w.root.querySelectorAll(w.last)) : []; };
  const roots = (sel) => walk(sel).seen;
  const styleOf = (el) => el.ownerDocument.defaultView.getComputedStyle(el);
  const frameShift = (f) => {
    const r = f.getBoundingClientRect(), cs = styleOf(f);
    return [r.left + f.clientLeft + (parseFloat(cs.paddingLeft) || 0),
            r.top + f.clientTop + (parseFloat(cs.paddingTop) || 0)];
  };
  const offset = (el) => {
    let x = 0, y = 0;
    for (let w = el.ownerDocument.defaultView; w && w.frameElement; w = w.frameElement.ownerDocument.defaultView) {
      const [dx, dy] = frameShift(w.frameElement);
      x += dx; y += dy;
    }
    return [x, y];
  };
  const hitAt = (x, y) => {
    let hit = document.elementFromPoint(x, y);
    for (let step = 0; hit && step < 64; step++) {
      if (hit.shadowRoot) {
        const inner = hit.shadowRoot.elementFromPoint(x, y);
        if (inner && inner !== hit) { hit = inner; continue; }
      }
      if ((hit.tagName === 'IFRAME' || hit.tagName === 'FRAME') && hit.contentDocument) {
        const [dx, dy] = frameShift(hit);
        x -= dx; y -= dy;
        const inner = hit.contentDocument.elementFromPoint(x, y);
        if (!inner) break;
        hit = inner;
        continue;
      }
      break;
    }
    return hit;
  };
  const within = (el, n) => { for (; n; n = n.parentNode || n.host) if (n === el) return true; return false; };
  const unready = (el) => {
    if (!el || !el.isConnected) return 'missing';
    const st = styleOf(el), r = el.getBoundingClientRect();
    if (st.visibility !== 'visible' || st.display === 'none' || r.width === 0 || r.height === 0) return 'hidden';
    if (el.disabled === true || el.getAttribute('aria-disabled') === 'true' ||
        (el.closest && el.closest('fieldset[disabled]'))) return 'disabled';
    return '';
  };
)js";

/// `script` (a function's source) with the finder in front: the source of a
/// function taking the same arguments. Built once per script.
template <const std::string_view* Script>
const std::string& deep() {
  static const std::string source = [] {
    std::string s = "(...args) => {";
    s += finder;
    s += "  return (";
    s += *Script;
    s += ")(...args);\n}";
    return s;
  }();
  return source;
}

/// (sel, prev) -> {state: 'missing' | 'hidden' | 'moving' | 'disabled'}
///              | {state: 'covered', by} | {state: 'ok', x, y, width, height}.
/// Checks the first element matching `sel` for actionability (run with the
/// finder: deep<&actionability>()). Stable means the same box before and
/// after an animation frame whose time is at least 10 ms later (read in the
/// frame: a busy renderer's timeline may move on between frames while the
/// boxes still show the last frame's styles, and a reading just before a
/// frame shows nearly that frame's time, when a box a fraction of a pixel
/// away lays out the same; so only a frame about a frame later counts),
/// or the same box as `prev` ([x, y, width, height], centre form, in the top
/// viewport), seen stable by an earlier check. The world keeps the
/// selector's recent samples (the element, its box, its animation time):
/// after its frame, the same element in the same box as a sample from 10 to
/// 50 ms before (a frame to three) is stable too, so
/// checks beside each other share their frames. A page that draws no frames
/// (a tab in the background) is judged after 50 ms instead of a frame,
/// unless an animation or transition of the element or of an ancestor runs:
/// a renderer too busy to draw a frame in 50 ms leaves a moving box where
/// it was, so that box is looked at again ('moving') until a frame shows it
/// still. The hit test goes through shadow roots and frames.
inline constexpr std::string_view actionability = R"js(async (sel, prev) => {
  const el = find(sel);
  if (!el || !el.isConnected) return {state: 'missing'};
  const box = () => {
    const r = el.getBoundingClientRect(), [ox, oy] = offset(el);
    return [ox + r.left + r.width / 2, oy + r.top + r.height / 2, r.width, r.height];
  };
  // The animation time the boxes show: it moves on only from one frame to the next.
  const when = () => el.ownerDocument.timeline.currentTime;
  // The running animations and transitions of the element and its ancestors;
  // one that has not started yet (pending, or at its time 0 in the first frame
  // it runs) still shows where it starts, so a box the same across that frame
  // proves nothing.
  const running = () => el.ownerDocument.getAnimations().filter((an) => {
    const t = an.playState === 'running' && an.effect ? an.effect.target : null;
    return !!t && (t === el || (typeof t.contains === 'function' && t.contains(el)));
  });
  const animated = () => running().length > 0;
  const starting = () => running().some((an) => an.pending || !(an.currentTime > 0));
  const st = styleOf(el);
  let a = box(), ta = when();
  if (st.visibility !== 'visible' || st.display === 'none' || a[2] === 0 || a[3] === 0) return {state: 'hidden'};
  if (a[0] + a[2] / 2 <= 0 || a[1] + a[3] / 2 <= 0 || a[0] - a[2] / 2 >= innerWidth || a[1] - a[3] / 2 >= innerHeight) {
    el.scrollIntoView({block: 'center', inline: 'center'});
    a = box();
    ta = when();
  }
  // This world's recent samples of the selector (the element, its box, its
  // animation time): after a frame, the same box one to three frames
  // before proves stability without waiting for the time to move on.
  const samples = globalThis.__seckill_samples || (globalThis.__seckill_samples = new Map());
  const same = (p, q) => Array.isArray(p) && q.every((v, i) => v === p[i]);
  const recent = () => (samples.get(sel) || []).filter(s => s.el === el && performance.now() - s.at < 250);
  const held = (bx, t) => recent().some(s => t - s.time >= 10 && t - s.time <= 50 && same(s.box, bx));
  const note = (bx, t) => samples.set(sel, [...recent(), {el, box: bx, time: t, at: performance.now()}].slice(-4));
  let b = a, settled = true;
  if (!same(prev, a)) {
    note(a, ta);
    settled = false;
    for (let i = 0; i < 3; i++) {
      const framed = await new Promise(r => {
        let done = false;
        requestAnimationFrame(() => { done = true; r(true); });
        setTimeout(() => { if (!done) r(false); }, 50);
      });
      if (!el.isConnected) return {state: 'missing'};
      b = box();
      const tb = when();
      if (a.some((v, i) => v !== b[i])) {
        samples.delete(sel);
        return {state: 'moving'};
      }
      if (framed && (ta === null || tb - ta >= 10 || held(b, tb)) && !starting()) {
        settled = true;
        break;
      }
      // No frame within 50 ms: a page that draws none (a tab in the background)
      // is judged now, unless something animates the element, whose box then
      // moves only with the next frame (a starved renderer's frames come late).
      if (!framed && !animated()) { settled = true; break; }
    }
  }
  if (!settled) return {state: 'moving'};  // not seen still across a frame: look again
  note(b, when());
  if (el.disabled === true || el.getAttribute('aria-disabled') === 'true' ||
      (el.closest && el.closest('fieldset[disabled]'))) return {state: 'disabled'};
  const x = b[0], y = b[1];
  const hit = hitAt(x, y);
  if (!hit || !within(el, hit))
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
  const el = find(sel), why = unready(el);
  if (why) return why;
  if (el.tagName !== 'SELECT') return 'not-select';
  const opts = Array.from(el.options);
  const opt = opts.find(o => o.value === value) || opts.find(o => o.label === value);
  if (!opt) return 'no-option';
  if (opt.disabled) return 'option-disabled';
  if (el.getRootNode().activeElement !== el) el.focus();
  const to = opt.index, from = el.selectedIndex;
  if (from === to) return {status: 'ok', keys: 0, key: 'ArrowDown'};
  // Arrow keys skip disabled options: count the enabled ones on the way.
  const down = from < to;
  const keys = opts.filter(o => !o.disabled &&
                                (down ? o.index > from && o.index <= to : o.index >= to && o.index < from)).length;
  return {status: 'ok', keys, key: down ? 'ArrowDown' : 'ArrowUp'};
})js";

/// (sel, text) -> 'missing' | 'hidden' | 'disabled' | 'not-input'
///               | {status: 'ok', same}.
/// Prepares typing `text` into an input after the same checks (a read-only
/// input counts as disabled): focuses it, unless it already holds `text`
/// (same: true, nothing to type). The text itself is trusted input (select
/// all, Input.insertText, Tab); this script sets no value and dispatches no
/// event.
inline constexpr std::string_view fill_prepare = R"js((sel, text) => {
  const el = find(sel), why = unready(el);
  if (why) return why;
  if (!('value' in el) || el.tagName === 'SELECT' || el.tagName === 'BUTTON') return 'not-input';
  if (el.readOnly) return 'disabled';
  if (String(el.value) === text) return {status: 'ok', same: true};
  if (el.getRootNode().activeElement !== el) el.focus();
  return {status: 'ok', same: false};
})js";

/// (sel) -> the value of the first element matching `sel`, or null.
inline constexpr std::string_view read_value = R"js((sel) => {
  const el = find(sel);
  return el && 'value' in el ? String(el.value) : null;
})js";

/// (id, binding, sel, markup) -> true. Installs (once per document and id;
/// run with the finder) a MutationObserver reporting the first match of `sel`
/// through the function `globalThis[binding]` whenever its presence or its
/// text changes (with `markup`: whenever the markup of any match changes,
/// its text then a count and a hash), and once when the document's DOM is
/// parsed (`initial`); it
/// watches every shadow root and frame document the selector passes
/// through. With an array of texts for `markup` (page::async_on_sight): the
/// first visible match of `sel`, else the first visible element whose own
/// text holds one of the texts, looked for at most every 50 ms. Throws on a
/// bad selector.
inline constexpr std::string_view install_observer = R"js((id, binding, sel, markup) => {
  const report = globalThis[binding];
  if (typeof report !== 'function') throw new Error('no report binding in this world');
  if (sel) for (const part of String(sel).split('>>>')) document.createDocumentFragment().querySelector(part.trim());
  const sight = Array.isArray(markup);
  const reg = globalThis.__seckill_observers || (globalThis.__seckill_observers = {});
  if (reg[id]) return true;
  reg[id] = {last: undefined, observer: null, roots: []};
  const options = {subtree: true, childList: true, characterData: true, attributes: true};
  // Every document and shadow root on the selector's way is observed, and a
  // frame's load looks again (its new document is observed from then on).
  const follow = () => {
    for (const r of roots(sel)) {
      if (reg[id].roots.includes(r)) continue;
      reg[id].roots.push(r);
      reg[id].observer.observe(r, options);
      if (r !== document && r.addEventListener) r.addEventListener('load', () => check(false), true);
    }
  };
  const visible = (el) => {
    const st = styleOf(el), r = el.getBoundingClientRect();
    return st.visibility === 'visible' && st.display !== 'none' && r.width > 0 && r.height > 0;
  };
  const describe = (el) => {
    let d = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '');
    if (el.classList && el.classList.length) d += '.' + el.classList[0];
    if (el.src) { try { d += ' from ' + new URL(el.src, location.href).host; } catch (e) {} }
    const t = (el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 80);
    return t ? d + ': ' + t : d;
  };
  const seen = () => {
    const hit = sel ? findAll(sel).find(visible) : undefined;
    if (hit) return {present: true, text: describe(hit)};
    const lower = markup.map(t => String(t).toLowerCase());
    const top = document.body || document.documentElement;
    if (!lower.length || !top) return {present: false, text: ''};
    const w = document.createTreeWalker(top, NodeFilter.SHOW_TEXT);
    for (let n = w.nextNode(); n; n = w.nextNode()) {
      const t = n.nodeValue.toLowerCase();
      const i = lower.findIndex(x => t.includes(x));
      const el = n.parentElement;
      if (i < 0 || !el || el.closest('script, style, noscript, template') || !visible(el)) continue;
      return {present: true, text: 'the text "' + markup[i] + '" in ' + describe(el)};
    }
    return {present: false, text: ''};
  };
  const check = (initial) => {
    if (!reg[id]) return;
    let s;
    if (sight) {
      s = seen();
    } else if (markup) {  // every match's markup, as a short FNV-1a hash
      const all = findAll(sel);
      let h = 0x811c9dc5;
      for (const e of all) {
        const m = e.outerHTML;
        for (let i = 0; i < m.length; i++) h = Math.imul(h ^ m.charCodeAt(i), 0x01000193) >>> 0;
        h = Math.imul(h ^ 10, 0x01000193) >>> 0;
      }
      s = {present: all.length > 0, text: all.length ? all.length + ':' + h.toString(16) : ''};
    } else {
      const el = find(sel);
      s = el ? {present: true, text: (el.textContent || '').trim()} : {present: false, text: ''};
    }
    if (reg[id].observer) follow();
    const key = (s.present ? '1' : '0') + s.text;
    if (key === reg[id].last) return;
    reg[id].last = key;
    report(JSON.stringify({id, present: s.present, text: s.text, initial}));
  };
  const start = () => {
    if (!reg[id]) return;
    // A visibility check walks the document: at most one per 50 ms.
    const later = () => {
      if (!reg[id] || reg[id].pending) return;
      reg[id].pending = setTimeout(() => { if (reg[id]) { reg[id].pending = 0; check(false); } }, 50);
    };
    reg[id].observer = new MutationObserver(sight ? later : () => check(false));
    document.addEventListener('load', () => check(false), true);
    check(true);
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
