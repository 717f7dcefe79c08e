// Generated from the CDP backend's page scripts
// (include/seckill/browser/detail/page_scripts.hpp and shop_scripts.hpp) by
// tests/browser/unit-page_functions.cpp: do not edit. After a change there:
//   SECKILL_UPDATE_PAGE_FUNCTIONS=1 seckill_browser_tests -tc='*page functions*'
// The content script (content.js, loaded after this file in the same
// isolated world) runs them: the extension backend reads a shop and checks
// an element with the CDP backend's own code.
globalThis.seckillPage = (() => {
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
  const fns = {};
  fns.check = async (sel, prev) => {
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
};
  fns.select_prepare = (sel, value) => {
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
};
  fns.fill_prepare = (sel, text) => {
  const el = find(sel), why = unready(el);
  if (why) return why;
  if (!('value' in el) || el.tagName === 'SELECT' || el.tagName === 'BUTTON') return 'not-input';
  if (el.readOnly) return 'disabled';
  if (String(el.value) === text) return {status: 'ok', same: true};
  if (el.getRootNode().activeElement !== el) el.focus();
  return {status: 'ok', same: false};
};
  fns.read_value = (sel) => {
  const el = find(sel);
  return el && 'value' in el ? String(el.value) : null;
};
  fns.read_shop = (p) => {
  const text = (el) => (el ? (el.textContent || '') : '').trim();
  const read = (el, f, fallback) => {
    if (!f || !f.given) return fallback;
    const t = f.child ? el.querySelector(f.child) : el;
    if (!t) return undefined;
    if (!f.attribute) return text(t);
    const v = t.getAttribute(f.attribute);
    return v === null ? undefined : v.trim();
  };
  const num = (s) => {
    if (s === undefined || s === null) return NaN;
    const m = String(s).replace(/[,\s]/g, '').match(/-?\d+(\.\d+)?/);
    return m ? Number(m[0]) : NaN;
  };
  let offers = [];
  if (p.layout === 'select') {
    const box = find(p.offers);
    offers = box && box.options ? Array.from(box.options).map(o => ({
      sku: o.value,
      name: text(o),
      category: o.dataset.category || '',
      price: Number(o.dataset.price || 'NaN'),
      stock: o.disabled ? 0 : Number(o.dataset.stock === undefined ? 1 : o.dataset.stock)
    })) : [];
  } else {
    offers = findAll(p.offers).map(el => {
      const off = (p.unavailable && el.matches(p.unavailable)) || el.disabled === true ||
                  el.getAttribute('aria-disabled') === 'true';
      const count = read(el, p.stock, undefined);
      const stock = off ? 0 : count === undefined ? 1 : num(count);
      return {
        sku: read(el, p.sku, '') || '',
        name: read(el, p.name, text(el)) || '',
        category: read(el, p.category, '') || '',
        price: num(read(el, p.price, undefined)),
        stock: Number.isNaN(stock) ? 0 : stock
      };
    });
  }
  // What the page holds now: the chosen offer (a select's) and the quantity.
  let chosen = null;
  if (p.layout === 'select') {
    const box = find(p.offers);
    if (box && typeof box.value === 'string' && box.value !== '') chosen = box.value;
  }
  let quantity = null;
  if (p.quantity) {
    const q = find(p.quantity);
    if (q) {
      const n = num(typeof q.value === 'string' ? q.value : text(q));
      if (Number.isInteger(n)) quantity = n;
    }
  }
  return {status: text(find(p.status)), offers, chosen, quantity};
};
  fns.offer_path = (p, sku) => {
  const read = (el, f) => {
    const t = f.child ? el.querySelector(f.child) : el;
    if (!t) return undefined;
    if (!f.attribute) return (t.textContent || '').trim();
    const v = t.getAttribute(f.attribute);
    return v === null ? undefined : v.trim();
  };
  const el = findAll(p.offers).find(e => read(e, p.sku) === sku);
  if (!el) return {found: false};
  const steps = [];
  let e = el;
  for (; e.parentElement; e = e.parentElement) {
    const i = Array.prototype.indexOf.call(e.parentElement.children, e) + 1;
    steps.unshift(e.tagName.toLowerCase() + ':nth-child(' + i + ')');
  }
  const top = e.parentNode;  // a document, or a shadow root (whose children have no parentElement)
  if (top && top.nodeType === Node.DOCUMENT_FRAGMENT_NODE) {
    const i = Array.prototype.indexOf.call(top.children, e) + 1;
    steps.unshift(e.tagName.toLowerCase() + ':nth-child(' + i + ')');
  } else {
    steps.unshift(':root');
  }
  const parts = String(p.offers).split('>>>');
  parts[parts.length - 1] = ' ' + steps.join(' > ');
  return {found: true, path: parts.join('>>>')};
};
  fns.read_count = (sel) => {
  const el = find(sel);
  if (!el) return null;
  const s = 'value' in el && el.tagName !== 'BUTTON' ? String(el.value) : (el.textContent || '');
  const m = s.match(/-?\d+/);
  return m ? Number(m[0]) : null;
};
  fns.exists = (sel) => find(sel) !== null;
  fns.read_text = (sel) => {
  const el = find(sel);
  return el === null ? null : (el.textContent || '').trim();
};
  fns.date_samples = async (n) => {
  const out = [];
  for (let i = 0; i < n; ++i) {
    try {
      const sent = Date.now();
      const r = await fetch(location.href, {method: 'HEAD', cache: 'no-store'});
      const received = Date.now();
      const date = r.headers.get('date');
      if (date) out.push({sent, received, date});
    } catch (e) {
    }
  }
  return out;
};
  fns.clock_texts = (sel, n) => new Promise((resolve) => {
  const out = [];
  const text = () => {
    const el = find(sel);
    return el === null ? null : (el.textContent || '').trim();
  };
  const end = Date.now() + 2500;
  let last = text(), lastAt = Date.now();
  const step = () => {
    const now = Date.now(), t = text();
    if (t !== last) {
      if (t !== null && last !== null) out.push({before: lastAt, after: now, text: t});
      last = t;
    }
    lastAt = now;
    if (out.length >= n || now >= end) resolve(out); else setTimeout(step, 0);
  };
  setTimeout(step, 0);
});
  const installObserver = (id, binding, sel, markup) => {
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
};
  const removeObserver = (id) => {
  const reg = globalThis.__seckill_observers;
  if (reg && reg[id]) {
    if (reg[id].observer) reg[id].observer.disconnect();
    delete reg[id];
  }
  return true;
};
  const defaults = {
    verification: "iframe[src*=\"recaptcha/api2/bframe\"], iframe[title*=\"recaptcha challenge\" i], iframe[src*=\"hcaptcha.com\"][src*=\"challenge\"], iframe[src*=\"challenges.cloudflare.com\"], .cf-turnstile, .geetest_panel_box, .geetest_holder, #nc_1_n1z, .nc_scale, #tcaptcha_iframe, #tcaptcha_transform, [class*=\"slide-verify\"], [class*=\"slider-captcha\"], [class*=\"captcha-slider\"], input[autocomplete=\"one-time-code\"]",
    verification_text: ["verify you are human","are you human","are you a robot","not a robot","security check","slide to verify","滑块","验证码","安全验证","人机验证"],
  };
  return {find, findAll, roots, styleOf, offset, hitAt, within, fns, installObserver,
          removeObserver, defaults};
})();
