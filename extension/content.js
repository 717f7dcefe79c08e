// The extension's content script, in its isolated world (no page globals,
// no eval): perception (the stock status, the offers, the order's result,
// a countdown, route changes of single-page shops, watched with
// MutationObservers) and the reads and actionability checks the service
// worker asks for by name. The functions mirror the CDP backend's scripts
// (include/seckill/browser/detail/page_scripts.hpp and shop_scripts.hpp), so
// both backends see a page alike. It never clicks or dispatches events:
// input is trusted, through chrome.debugger, in the service worker.
(() => {
  // ---- the finder: selectors into open shadow roots and same-origin frames (`host >>> inner`)
  const descend = (host) => host.shadowRoot ||
      ((host.tagName === 'IFRAME' || host.tagName === 'FRAME') ? host.contentDocument : null);
  const walk = (sel) => {
    const parts = String(sel).split('>>>').map((s) => s.trim());
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
  const text = (el) => (el ? (el.textContent || '') : '').trim();
  const visibleBox = (el) => {
    const st = styleOf(el), r = el.getBoundingClientRect();
    return st.visibility === 'visible' && st.display !== 'none' && r.width > 0 && r.height > 0;
  };
  const disabled = (el) => el.disabled === true || el.getAttribute('aria-disabled') === 'true' ||
      !!(el.closest && el.closest('fieldset[disabled]'));

  // ---- reads (named; the service worker calls them by name with JSON arguments)
  const samples = new Map();  // actionability: recent boxes per selector
  const fns = {
    read_shop(p) {
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
        offers = box && box.options ? Array.from(box.options).map((o) => ({
          sku: o.value,
          name: text(o),
          category: o.dataset.category || '',
          price: Number(o.dataset.price || 'NaN'),
          stock: o.disabled ? 0 : Number(o.dataset.stock === undefined ? 1 : o.dataset.stock),
        })) : [];
      } else {
        offers = findAll(p.offers).map((el) => {
          const off = (p.unavailable && el.matches(p.unavailable)) || el.disabled === true ||
                      el.getAttribute('aria-disabled') === 'true';
          const count = read(el, p.stock, undefined);
          const stock = off ? 0 : count === undefined ? 1 : num(count);
          return {
            sku: read(el, p.sku, '') || '',
            name: read(el, p.name, text(el)) || '',
            category: read(el, p.category, '') || '',
            price: num(read(el, p.price, undefined)),
            stock: Number.isNaN(stock) ? 0 : stock,
          };
        });
      }
      // NaN is no JSON: an unknown price travels as null.
      for (const o of offers) if (Number.isNaN(o.price)) o.price = null;
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
    },
    offer_path(p, sku) {
      const read = (el, f) => {
        const t = f.child ? el.querySelector(f.child) : el;
        if (!t) return undefined;
        if (!f.attribute) return (t.textContent || '').trim();
        const v = t.getAttribute(f.attribute);
        return v === null ? undefined : v.trim();
      };
      const el = findAll(p.offers).find((e) => read(e, p.sku) === sku);
      if (!el) return {found: false};
      const steps = [];
      let e = el;
      for (; e.parentElement; e = e.parentElement) {
        const i = Array.prototype.indexOf.call(e.parentElement.children, e) + 1;
        steps.unshift(e.tagName.toLowerCase() + ':nth-child(' + i + ')');
      }
      const top = e.parentNode;
      if (top && top.nodeType === Node.DOCUMENT_FRAGMENT_NODE) {
        const i = Array.prototype.indexOf.call(top.children, e) + 1;
        steps.unshift(e.tagName.toLowerCase() + ':nth-child(' + i + ')');
      } else {
        steps.unshift(':root');
      }
      const parts = String(p.offers).split('>>>');
      parts[parts.length - 1] = ' ' + steps.join(' > ');
      return {found: true, path: parts.join('>>>')};
    },
    read_count(sel) {
      const el = find(sel);
      if (!el) return null;
      const s = 'value' in el && el.tagName !== 'BUTTON' ? String(el.value) : (el.textContent || '');
      const m = s.match(/-?\d+/);
      return m ? Number(m[0]) : null;
    },
    exists: (sel) => find(sel) !== null,
    read_text(sel) {
      const el = find(sel);
      return el === null ? null : text(el);
    },
    read_value(sel) {
      const el = find(sel);
      return el && 'value' in el ? String(el.value) : null;
    },
    location: () => location.href,
    async date_samples(n) {
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
    },
    clock_texts(sel, n) {
      return new Promise((resolve) => {
        const out = [];
        const step = () => {
          const el = find(sel);
          out.push({at: Date.now(), text: el === null ? null : text(el)});
          if (out.length >= n) resolve(out); else setTimeout(step, 20);
        };
        step();
      });
    },
    // The CDP backend's actionability check (page_scripts.hpp `actionability`).
    async check(sel, prev) {
      const el = find(sel);
      if (!el || !el.isConnected) return {state: 'missing'};
      const box = () => {
        const r = el.getBoundingClientRect(), [ox, oy] = offset(el);
        return [ox + r.left + r.width / 2, oy + r.top + r.height / 2, r.width, r.height];
      };
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
      const same = (p, q) => Array.isArray(p) && q.every((v, i) => v === p[i]);
      const recent = () => (samples.get(sel) || []).filter((s) => s.el === el && performance.now() - s.at < 250);
      const held = (bx, t) => recent().some((s) => t - s.time >= 10 && t - s.time <= 50 && same(s.box, bx));
      const note = (bx, t) => samples.set(sel, [...recent(), {el, box: bx, time: t, at: performance.now()}].slice(-4));
      let b = a, settled = true;
      if (!same(prev, a)) {
        note(a, ta);
        settled = false;
        for (let i = 0; i < 3; i++) {
          const framed = await new Promise((r) => {
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
      if (disabled(el)) return {state: 'disabled'};
      const x = b[0], y = b[1];
      const hit = hitAt(x, y);
      if (!hit || !within(el, hit))
        return {state: 'covered', by: hit ? hit.tagName.toLowerCase() + (hit.id ? '#' + hit.id : '') : ''};
      return {state: 'ok', x, y, width: b[2], height: b[3]};
    },
    select_prepare(sel, value) {
      const el = find(sel);
      if (!el || !el.isConnected) return 'missing';
      if (!visibleBox(el)) return 'hidden';
      if (disabled(el)) return 'disabled';
      if (el.tagName !== 'SELECT') return 'not-select';
      const opts = Array.from(el.options);
      const opt = opts.find((o) => o.value === value) || opts.find((o) => o.label === value);
      if (!opt) return 'no-option';
      if (opt.disabled) return 'option-disabled';
      if (el.getRootNode().activeElement !== el) el.focus();
      const to = opt.index, from = el.selectedIndex;
      if (from === to) return {status: 'ok', keys: 0, key: 'ArrowDown'};
      const down = from < to;
      const keys = opts.filter((o) => !o.disabled &&
          (down ? o.index > from && o.index <= to : o.index >= to && o.index < from)).length;
      return {status: 'ok', keys, key: down ? 'ArrowDown' : 'ArrowUp'};
    },
    fill_prepare(sel, value) {
      const el = find(sel);
      if (!el || !el.isConnected) return 'missing';
      if (!visibleBox(el)) return 'hidden';
      if (disabled(el)) return 'disabled';
      if (!('value' in el) || el.tagName === 'SELECT' || el.tagName === 'BUTTON') return 'not-input';
      if (el.readOnly) return 'disabled';
      if (String(el.value) === value) return {status: 'ok', same: true};
      if (el.getRootNode().activeElement !== el) el.focus();
      return {status: 'ok', same: false};
    },
    watch(cfg) {
      return watch(cfg);
    },
  };

  // ---- perception: MutationObservers on what the watch settings name
  let port = null;
  const report = (ev) => {
    try {
      if (port) port.postMessage({event: ev});
    } catch (e) {
    }
  };
  let observers = [];
  let watching = null;
  let href = location.href;

  // One watched thing: `kind` reported whenever the first match's presence
  // or text changes (markup: whenever any match's markup changes).
  const observe = (kind, sel, markup) => {
    let last;
    const o = {kind, check: null, observer: null, roots: []};
    const options = {subtree: true, childList: true, characterData: true, attributes: true};
    o.check = (initial) => {
      let s;
      if (markup) {
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
        s = el ? {present: true, text: text(el)} : {present: false, text: ''};
      }
      for (const r of roots(sel)) {
        if (o.roots.includes(r)) continue;
        o.roots.push(r);
        o.observer.observe(r, options);
      }
      const key = (s.present ? '1' : '0') + s.text;
      if (key === last && !initial) return;
      last = key;
      const ev = {kind, present: s.present, text: s.text, initial};
      // A status or offers change carries the shop as it reads now, so the
      // reaction to it needs no request of its own.
      if ((kind === 'status' || kind === 'offers') && watching && watching.shop) {
        try {
          ev.shop = fns.read_shop(watching.shop);
        } catch (e) {
        }
      }
      report(ev);
    };
    o.observer = new MutationObserver(() => { routed(); o.check(false); });
    return o;
  };

  // A single-page shop's route change (history.pushState, a hash): the
  // watched things are reported anew, as for a new document.
  const routed = () => {
    if (location.href === href) return;
    href = location.href;
    report({kind: 'route', present: true, text: href, initial: true});
    for (const o of observers) o.check(true);
  };
  // A form control the user changed (no mutation shows a control's value):
  // the shop a change event carried is stale from here on. A page script that
  // sets .value sends no event; the driver's carried_snapshot_age bounds that.
  const edited = () => { if (watching) report({kind: 'form', present: true, text: '', initial: false}); };
  addEventListener('input', edited, true);
  addEventListener('change', edited, true);
  addEventListener('popstate', routed);
  addEventListener('hashchange', routed);
  if (globalThis.navigation) navigation.addEventListener('navigatesuccess', routed);

  const start = (cfg) => {
    for (const o of observers) o.observer.disconnect();
    observers = [];
    if (cfg.status) observers.push(observe('status', cfg.status, false));
    if (cfg.result) observers.push(observe('result', cfg.result, false));
    if (cfg.offers) observers.push(observe('offers', cfg.offers, true));
    if (cfg.countdown) observers.push(observe('countdown', cfg.countdown, false));
    for (const o of observers) o.check(true);
  };
  const ready = () => new Promise((r) => {
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', () => r(), {once: true});
    else r();
  });
  async function watch(cfg) {
    watching = cfg;
    await ready();
    for (const part of [cfg.status, cfg.result, cfg.offers, cfg.countdown, cfg.logged_in]) {
      if (part) for (const p of String(part).split('>>>')) document.createDocumentFragment().querySelector(p.trim());
    }
    start(cfg);
    return {logged_in: cfg.logged_in ? find(cfg.logged_in) !== null : null, url: location.href};
  }

  const connect = () => {
    try {
      port = chrome.runtime.connect({name: 'seckill-page'});
    } catch (e) {
      return;  // the extension was removed or reloaded: this script is orphaned
    }
    port.onMessage.addListener(async (m) => {
      if (m.watch) {
        watch(m.watch).catch(() => {});
        return;
      }
      const fn = Object.prototype.hasOwnProperty.call(fns, m.fn) ? fns[m.fn] : null;
      if (!fn) {
        port.postMessage({id: m.id, ok: false, code: 'invalid_argument', message: 'no page function ' + m.fn});
        return;
      }
      try {
        const result = await fn(...(m.args || []));
        port.postMessage({id: m.id, ok: true, result: result === undefined ? null : result});
      } catch (e) {
        const code = e instanceof DOMException && e.name === 'SyntaxError' ? 'invalid_argument' : 'javascript_exception';
        try {
          port.postMessage({id: m.id, ok: false, code, message: String(e && e.message ? e.message : e)});
        } catch (e2) {
        }
      }
    });
    // The worker restarted: connect again (the settings come back with it).
    port.onDisconnect.addListener(() => {
      port = null;
      setTimeout(connect, 50);
    });
  };
  if (window === window.top) connect();
})();
