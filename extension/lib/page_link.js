// The service worker's side of the content scripts: one port per tab's
// current document, requests by id to the content script's named functions
// (no code is ever sent: content.js holds a fixed table), the watch settings
// of each tab (kept in chrome.storage.session, so a restarted worker and
// every new document of the tab get them), and the events the content
// scripts report. Exported for the native and the standalone modes alike.

import {ProtocolError} from './protocol.js';

const PORT_NAME = 'seckill-page';

export class PageLink {
  // onEvent(tabId, event): a content script's report ({kind, present, text, initial, url}).
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.ports = new Map();    // tabId -> Port of the current document
    this.waiters = new Map();  // tabId -> [resolve] waiting for a port
    this.pending = new Map();  // request id -> {resolve, reject, tabId}
    this.next = 1;
  }

  // Takes a content script's connection (chrome.runtime.onConnect).
  accept(port) {
    if (port.name !== PORT_NAME || !port.sender || !port.sender.tab || port.sender.frameId !== 0) return false;
    const tabId = port.sender.tab.id;
    this.ports.set(tabId, port);
    port.onMessage.addListener((m) => this.received(tabId, m));
    port.onDisconnect.addListener(() => {
      if (this.ports.get(tabId) === port) this.ports.delete(tabId);
      for (const [id, p] of this.pending) {
        if (p.tabId !== tabId) continue;
        this.pending.delete(id);
        p.reject(new ProtocolError('navigation_failed', 'the document went away during the call'));
      }
    });
    this.settings(tabId).then((cfg) => {
      if (cfg && this.ports.get(tabId) === port) port.postMessage({watch: cfg});
    });
    for (const w of this.waiters.get(tabId) || []) w(port);
    this.waiters.delete(tabId);
    return true;
  }

  received(tabId, m) {
    if (m && m.event) {
      this.onEvent(tabId, m.event);
      return;
    }
    const p = m && this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new ProtocolError(m.code || 'javascript_exception', m.message || 'the page script failed'));
  }

  // The port of the tab's current document, waiting for it up to `ms`.
  port(tabId, ms) {
    const now = this.ports.get(tabId);
    if (now) return Promise.resolve(now);
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(tabId) || [];
      const t = setTimeout(() => {
        const l = this.waiters.get(tabId) || [];
        this.waiters.set(tabId, l.filter((w) => w !== done));
        reject(new ProtocolError('timed_out', 'no content script answered in the tab within ' + ms + ' ms'));
      }, ms);
      const done = (p) => {
        clearTimeout(t);
        resolve(p);
      };
      list.push(done);
      this.waiters.set(tabId, list);
    });
  }

  // Calls the content script's function `fn` with `args`.
  async request(tabId, fn, args, ms = 10000) {
    const port = await this.port(tabId, ms);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        if (!this.pending.delete(id)) return;
        reject(new ProtocolError('timed_out', fn + ' did not answer within ' + ms + ' ms'));
      }, ms);
      this.pending.set(id, {
        tabId,
        resolve: (v) => { clearTimeout(t); resolve(v); },
        reject: (e) => { clearTimeout(t); reject(e); },
      });
      try {
        port.postMessage({id, fn, args});
      } catch (e) {
        this.pending.delete(id);
        clearTimeout(t);
        reject(new ProtocolError('navigation_failed', 'the document went away: ' + e.message));
      }
    });
  }

  // The tab's watch settings (what content.js observes), kept in storage.session.
  async settings(tabId) {
    const key = 'watch:' + tabId;
    const got = await chrome.storage.session.get(key);
    return got[key] || null;
  }

  // Stores the settings and sends them to the current document; its answer
  // ({logged_in}) once its observers run.
  async watch(tabId, cfg, ms = 10000) {
    await chrome.storage.session.set({['watch:' + tabId]: cfg});
    return this.request(tabId, 'watch', [cfg], ms);
  }

  async forget(tabId) {
    await chrome.storage.session.remove('watch:' + tabId);
  }
}
