// The extension's content script, in its isolated world (no page globals,
// no eval): perception (the stock status, the offers, the order's result,
// a countdown, a throttling notice, a verification, route changes of
// single-page shops) and the reads and actionability checks the service
// worker asks for by name. The observers, reads and checks are the CDP
// backend's own scripts (page_functions.js, generated from
// include/seckill/browser/detail/page_scripts.hpp and shop_scripts.hpp, and
// loaded first), so both backends see a page alike. It never clicks or
// dispatches events: input is trusted, through chrome.debugger, in the
// service worker.
(() => {
  const page = globalThis.seckillPage;  // page_functions.js
  const {find} = page;

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
  let watching = null;
  let href = location.href;

  // Each watched thing is page_driver's own observer (page_functions.js
  // installObserver): `kind` reported whenever the first match's presence
  // or text changes (offers: whenever any match's markup changes), and a
  // verification whenever a visible match or text comes or goes. They
  // report through this world's function REPORT.
  const REPORT = '__seckill_report';
  let watched = {};  // observer id -> {kind, which}
  globalThis[REPORT] = (json) => {
    const r = JSON.parse(json);
    const w = watched[r.id];
    if (!w) return;
    const ev = {kind: w.kind, present: r.present, text: r.text, initial: r.initial};
    if (w.kind === 'verification') ev.which = w.which;
    // A status or offers change carries the shop as it reads now, so the
    // reaction to it needs no request of its own.
    if ((w.kind === 'status' || w.kind === 'offers') && watching && watching.shop) {
      try {
        ev.shop = fns.read_shop(watching.shop);
      } catch (e) {
      }
    }
    report(ev);
  };

  // (Re)installs the observers the watch settings name; each reports what it
  // sees at once, as `initial`.
  const start = (cfg) => {
    for (const id of Object.keys(watched)) page.removeObserver(id);
    watched = {};
    const add = (kind, sel, markup, which) => {
      const id = 'watch-' + kind + (which === undefined ? '' : which);
      watched[id] = {kind, which};
      page.installObserver(id, REPORT, sel, markup);
    };
    if (cfg.status) add('status', cfg.status, false);
    if (cfg.result) add('result', cfg.result, false);
    if (cfg.offers) add('offers', cfg.offers, true);
    if (cfg.countdown) add('countdown', cfg.countdown, false);
    if (cfg.throttled) add('throttled', cfg.throttled, false);
    // A verification a person must solve (a captcha, a slider, a code): the
    // common checks and texts (the C++ driver sends them; a standalone run
    // takes page_functions.js's, with its profile's texts added), and the
    // profile's own selector.
    const v = cfg.verification;
    if (v) {
      const common = typeof v.common === 'string' ? v.common : page.defaults.verification;
      const texts = Array.isArray(v.texts)
        ? v.texts
        : [...page.defaults.verification_text, ...(Array.isArray(v.more_texts) ? v.more_texts : [])];
      add('verification', common, texts, 0);
      if (v.own) add('verification', v.own, [], 1);
    }
  };

  // A single-page shop's route change (history.pushState, a hash): the
  // watched things are reported anew, as for a new document.
  const routed = () => {
    if (location.href === href) return;
    href = location.href;
    report({kind: 'route', present: true, text: href, initial: true});
    if (watching) start(watching);
  };
  // Made before the watched things' observers, so a route change's
  // mutations report the route first.
  const routes = new MutationObserver(routed);
  // A form control the user changed (no mutation shows a control's value):
  // the shop a change event carried is stale from here on. A page script that
  // sets .value sends no event; the driver's carried_snapshot_age bounds that.
  const edited = () => { if (watching) report({kind: 'form', present: true, text: '', initial: false}); };
  addEventListener('input', edited, true);
  addEventListener('change', edited, true);
  addEventListener('popstate', routed);
  addEventListener('hashchange', routed);
  if (globalThis.navigation) navigation.addEventListener('navigatesuccess', routed);

  const ready = () => new Promise((r) => {
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', () => r(), {once: true});
    else r();
  });
  async function watch(cfg) {
    watching = cfg;
    await ready();
    for (const part of [cfg.status, cfg.result, cfg.offers, cfg.countdown, cfg.logged_in, cfg.throttled]) {
      if (part) for (const p of String(part).split('>>>')) document.createDocumentFragment().querySelector(p.trim());
    }
    routes.disconnect();
    routes.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
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
