// The extension's content script, in its isolated world (no page globals,
// no eval): perception (the stock status, the offers, the order's result,
// a countdown, route changes of single-page shops, watched with
// MutationObservers) and the reads and actionability checks the service
// worker asks for by name. Those reads and checks are the CDP backend's own
// scripts (page_functions.js, generated from
// include/seckill/browser/detail/page_scripts.hpp and shop_scripts.hpp, and
// loaded first), so both backends see a page alike. It never clicks or
// dispatches events: input is trusted, through chrome.debugger, in the
// service worker.
(() => {
  const page = globalThis.seckillPage;  // page_functions.js
  const {find, findAll, roots} = page;
  const text = (el) => (el ? (el.textContent || '') : '').trim();

  // ---- the functions the service worker calls by name, with JSON arguments
  const fns = {
    ...page.fns,
    read_shop(p) {
      const shop = page.fns.read_shop(p);
      // NaN is no JSON: an unknown price travels as null.
      for (const o of shop.offers) if (Number.isNaN(o.price)) o.price = null;
      return shop;
    },
    location: () => location.href,
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

  // A verification a person must solve (a captcha, a slider, a code): the
  // common checks and texts (`common`, `texts`) and the profile's own
  // selector (`own`), each watched by the CDP backend's own observer (its
  // visible matches and texts), reported as `verification` events.
  const SIGHT = '__seckill_sight';
  const SIGHTS = ['verification0', 'verification1'];
  globalThis[SIGHT] = (json) => {
    const r = JSON.parse(json);
    report({kind: 'verification', which: SIGHTS.indexOf(r.id), present: r.present, text: r.text,
            initial: r.initial});
  };
  const watchVerification = (v) => {
    for (const id of SIGHTS) page.removeObserver(id);
    if (!v) return;
    page.installObserver(SIGHTS[0], SIGHT, v.common, Array.isArray(v.texts) ? v.texts : []);
    if (v.own) page.installObserver(SIGHTS[1], SIGHT, v.own, []);
  };

  const start = (cfg) => {
    for (const o of observers) o.observer.disconnect();
    observers = [];
    if (cfg.status) observers.push(observe('status', cfg.status, false));
    if (cfg.result) observers.push(observe('result', cfg.result, false));
    if (cfg.offers) observers.push(observe('offers', cfg.offers, true));
    if (cfg.countdown) observers.push(observe('countdown', cfg.countdown, false));
    for (const o of observers) o.check(true);
    watchVerification(cfg.verification);
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
