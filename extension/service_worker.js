// The extension's service worker. Native-messaging mode: it connects to the
// native host (seckill_native_host, which runs the C++ grabber) and routes
// the host's requests to the tab's content script (perception,
// actionability checks) and to chrome.debugger (trusted input), and streams
// the content script's events back. Protocol: lib/protocol.js and
// docs/browser.md, "The extension". No eval, no remote code, no page
// globals; the pages' requests are left alone.

import {PageLink} from './lib/page_link.js';
import {TabInput} from './lib/input.js';
import * as actions from './lib/actions.js';
import {HOST_NAME, ProtocolError, VERSION, event, failure, reply} from './lib/protocol.js';
import {defaultProfile} from './lib/profile.js';
import {loadSettings} from './lib/settings.js';
import {StandaloneRun} from './lib/standalone.js';

let host = null;             // the native port, while connected
const inputs = new Map();    // tabId -> TabInput (the debugger attached)

const send = (m) => {
  if (host) host.postMessage(m);
};

const runs = new Map();     // tabId -> StandaloneRun (standalone mode)

export const link = new PageLink((tabId, ev) => {
  if (inputs.has(tabId)) send(event({tab: tabId, ...ev}));
  const run = runs.get(tabId);
  if (run) run.onEvent(ev);
});
chrome.runtime.onConnect.addListener((port) => link.accept(port));

// Appends a line to the log the popup shows (chrome.storage.session).
export async function note(text, state) {
  const got = await chrome.storage.session.get('log');
  const log = (got.log || []).slice(-199);
  log.push({at: Date.now(), text});
  const set = {log};
  if (state) set.state = state;
  await chrome.storage.session.set(set);
}

// Tabs whose page's responses (documents, XHR, fetch) go to the host: their
// URL, status and Retry-After, for the answers to an order the profile names
// (success_response, order_response). Read from DevTools' Network events:
// the page's requests themselves are left alone.
const answering = new Set();
async function reportResponses(tab) {
  if (answering.has(tab)) return;
  try {
    await chrome.debugger.sendCommand({tabId: tab}, 'Network.enable', {});
  } catch (e) {
    throw new ProtocolError('browser_closed', 'cannot watch the tab\'s responses: ' + e.message);
  }
  answering.add(tab);
}
const ANSWER_TYPES = new Set(['Document', 'XHR', 'Fetch']);
chrome.debugger.onEvent.addListener((source, method, params) => {
  if (method !== 'Network.responseReceived' || !answering.has(source.tabId) ||
      !params || !ANSWER_TYPES.has(params.type)) {
    return;
  }
  const r = params.response || {};
  const retry = Object.entries(r.headers || {}).find(([k]) => k.toLowerCase() === 'retry-after');
  send(event({
    tab: source.tabId,
    kind: 'response',
    url: String(r.url || ''),
    status: r.status,
    retry_after: retry ? String(retry[1]) : '',
  }));
});

chrome.tabs.onRemoved.addListener((tabId) => {
  answering.delete(tabId);
  if (!inputs.delete(tabId)) return;
  link.forget(tabId);
  send(event({tab: tabId, kind: 'closed', text: 'the tab was closed'}));
});
chrome.debugger.onDetach.addListener((source, reason) => {
  answering.delete(source.tabId);
  if (source.tabId === undefined || !inputs.delete(source.tabId)) return;
  send(event({tab: source.tabId, kind: 'closed', text: 'the debugger was detached: ' + reason}));
});

const need = (cond, what) => {
  if (!cond) throw new ProtocolError('invalid_argument', what);
};

// The tab the host named: one whose URL starts with `url`, else a new one
// when `open`; the debugger attached to it and its content script ready.
async function attach(args) {
  need(typeof args.url === 'string' && /^https?:\/\//.test(args.url), 'attach needs an http(s) url');
  const timeout = args.timeout_ms || 10000;
  const tabs = await chrome.tabs.query({});
  let tab = tabs.find((t) => t.url && t.url.startsWith(args.url));
  if (!tab) {
    if (!args.open) throw new ProtocolError('element_not_found', 'no tab shows ' + args.url);
    tab = await chrome.tabs.create({url: args.url, active: true});
  }
  if (!inputs.has(tab.id)) {
    try {
      await chrome.debugger.attach({tabId: tab.id}, '1.3');
    } catch (e) {
      if (!/already attached/i.test(e.message)) throw new ProtocolError('browser_closed', 'cannot attach to the tab: ' + e.message);
    }
    inputs.set(tab.id, new TabInput(tab.id, args.seed || 1));
  }
  await link.port(tab.id, timeout);
  await note('attached to ' + args.url, 'watching');
  return {tab: tab.id};
}

const tabOf = (args) => {
  need(Number.isInteger(args.tab), 'a request needs the tab attach answered');
  if (!inputs.has(args.tab)) throw new ProtocolError('browser_closed', 'tab ' + args.tab + ' is not attached (closed?)');
  return args.tab;
};

// The actions a batch may hold, each with what its args need: every step is
// checked before the first runs.
const isText = (v) => typeof v === 'string' || typeof v === 'number';
const BATCHED = {
  select: (a) => typeof a.selector === 'string' && isText(a.value),
  fill: (a) => typeof a.selector === 'string' && isText(a.text),
  click: (a) => typeof a.selector === 'string',
  check: (a) => typeof a.selector === 'string',
};
const STABLE_REUSE_MS = 250;  // as the CDP backend's stable_reuse

const ops = {
  attach,
  async watch(args) {
    const tab = tabOf(args);
    need(args.profile && typeof args.profile === 'object', 'watch needs a profile');
    if (args.profile.responses === true) await reportResponses(tab);
    return link.watch(tab, args.profile, args.timeout_ms || 10000);
  },
  async call(args) {
    need(typeof args.fn === 'string' && Array.isArray(args.args), 'call needs fn and args');
    return link.request(tabOf(args), args.fn, args.args, args.timeout_ms || 10000);
  },
  async click(args) {
    const tab = tabOf(args);
    need(typeof args.selector === 'string', 'click needs a selector');
    await actions.click(link, inputs.get(tab), tab, args.selector, args.options || {});
    return null;
  },
  async check(args) {
    const tab = tabOf(args);
    need(typeof args.selector === 'string', 'check needs a selector');
    const box = await actions.waitActionable(link, tab, args.selector, args.timeout_ms || 3000);
    return {x: box.x, y: box.y, width: box.width, height: box.height};
  },
  async select(args) {
    const tab = tabOf(args);
    need(BATCHED.select(args), 'select needs a selector and a value');
    await actions.select(link, inputs.get(tab), tab, args.selector, String(args.value), args.timeout_ms || 3000);
    return null;
  },
  async fill(args) {
    const tab = tabOf(args);
    need(BATCHED.fill(args), 'fill needs a selector and a text');
    try {
      await actions.fill(link, inputs.get(tab), tab, args.selector, String(args.text), args.timeout_ms || 3000);
    } catch (e) {
      // absent_ok: no such field is what was asked (a quantity of 1 where none shows).
      if (!(args.absent_ok === true && e instanceof ProtocolError && e.code === 'element_not_found')) throw e;
    }
    return null;
  },
  // Actions back to back in one request (a try's choice, quantity and press):
  // `steps`, each {op, args} of select, fill, click or check, all checked
  // before the first runs; the first failure ends the batch, its error
  // naming the step (`step`, from 0). The result: each step's result.
  async batch(args) {
    const tab = tabOf(args);
    const steps = args.steps;
    need(Array.isArray(steps) && steps.length > 0 && steps.length <= 8, 'batch needs 1 to 8 steps');
    steps.forEach((st, i) => {
      if (st && typeof st === 'object' && Object.hasOwn(BATCHED, st.op) && st.args &&
          typeof st.args === 'object' && BATCHED[st.op](st.args)) {
        return;
      }
      const e = new ProtocolError('invalid_argument', 'batch step ' + i + ' is not a ' +
          Object.keys(BATCHED).join(', ') + ' with the arguments it needs');
      e.step = i;
      throw e;
    });
    // A click's check waits for an animation frame to see its element still.
    // Looked at as the batch starts, that frame passes while the steps before
    // the click run; the click's own check then takes the box as still when
    // the element is exactly there (within STABLE_REUSE_MS), as the CDP
    // backend reuses a recent stable box.
    const at = steps.findIndex((st) => st.op === 'click');
    const early = at > 0
      ? link.request(tab, 'check', [steps[at].args.selector, null], 1000)
          .then((r) => ({r, when: performance.now()}), () => null)
      : null;
    const results = [];
    for (let i = 0; i < steps.length; i++) {
      try {
        if (i === at && early) {
          const seen = await early;
          const fresh = seen && seen.r && seen.r.state === 'ok' && performance.now() - seen.when < STABLE_REUSE_MS;
          const a = steps[i].args;
          await actions.click(link, inputs.get(tab), tab, a.selector, a.options || {},
                              fresh ? [seen.r.x, seen.r.y, seen.r.width, seen.r.height] : null);
          results.push(null);
          continue;
        }
        results.push(await ops[steps[i].op]({...steps[i].args, tab}));
      } catch (e) {
        const err = e instanceof ProtocolError ? e : new ProtocolError('javascript_exception', String(e && e.message ? e.message : e));
        err.step = i;
        throw err;
      }
    }
    return results;
  },
  async reload(args) {
    await actions.reload(tabOf(args), args.timeout_ms || 30000);
    return null;
  },
  async note(args) {
    await note(String(args.text || ''), args.state);
    return null;
  },
  async detach(args) {
    const tab = tabOf(args);
    inputs.delete(tab);
    answering.delete(tab);
    await link.forget(tab);
    await chrome.debugger.detach({tabId: tab}).catch(() => {});
    return null;
  },
};

async function onHostMessage(m) {
  if (!m || typeof m !== 'object') return;
  const id = Number.isInteger(m.id) ? m.id : null;
  if (m.v !== VERSION) {
    send(failure(id, new ProtocolError('protocol_error', 'protocol version ' + m.v + ' is not ' + VERSION)));
    return;
  }
  const op = Object.prototype.hasOwnProperty.call(ops, m.op) ? ops[m.op] : null;
  if (!op) {
    send(failure(id, new ProtocolError('invalid_argument', 'no operation ' + m.op)));
    return;
  }
  try {
    send(reply(id, await op(m.args || {})));
  } catch (e) {
    send(failure(id, e));
  }
}

// Connects to the native host once per browser session (the host decides
// whether it has work; without a registered host the port just closes and
// the extension stays in standalone mode).
export function connectHost() {
  if (host) return;
  const port = chrome.runtime.connectNative(HOST_NAME);
  host = port;
  port.onMessage.addListener(onHostMessage);
  port.onDisconnect.addListener(() => {
    const why = chrome.runtime.lastError ? chrome.runtime.lastError.message : 'the host ended';
    if (host === port) host = null;
    for (const tab of inputs.keys()) chrome.debugger.detach({tabId: tab}).catch(() => {});
    inputs.clear();
    answering.clear();
    note('native host: ' + why);
  });
  port.postMessage({v: VERSION, hello: {extension: chrome.runtime.getManifest().version}});
}

chrome.storage.session.get('native_tried').then((got) => {
  if (got.native_tried) return;
  chrome.storage.session.set({native_tried: true});
  connectHost();
});

// The debugger on a tab named by its id (the popup's active tab: its URL
// needs no host permission this way), and its content script ready.
async function attachTab(tabId, seed) {
  if (!inputs.has(tabId)) {
    try {
      await chrome.debugger.attach({tabId}, '1.3');
    } catch (e) {
      if (!/already attached/i.test(e.message)) throw new Error('cannot attach to the tab: ' + e.message);
    }
    inputs.set(tabId, new TabInput(tabId, Number.isInteger(seed) ? seed : 1));
  }
  await link.port(tabId, 10000);
  await note('attached to tab ' + tabId, 'watching');
  return tabId;
}

// ---- standalone mode: the extension decides by itself (lib/standalone.js),
// with the strategy and the profile the options page saved. Started from the
// extension's own pages (the popup's button): {standalone: 'start', tab}, or
// {standalone: 'start', url, open} (the tab showing url; open: else a new
// one); never from a content script.
async function startStandalone(m) {
  const settings = await loadSettings(chrome.storage.local);
  if (!settings.ok) {
    throw new Error(settings.problems.length ? settings.problems[0].message : 'no strategy saved');
  }
  const tab = Number.isInteger(m.tab) ? await attachTab(m.tab, m.seed)
                                      : (await attach({url: m.url, open: m.open === true, seed: m.seed})).tab;
  const old = runs.get(tab);
  if (old) await old.finish('failed', 'replaced by a new run');
  await newRun(tab, settings, m.seed).start();
  return {tab};
}

// A standalone run on an attached tab, with the saved settings; kept in `runs`.
function newRun(tab, settings, seed) {
  const run = new StandaloneRun({
    link,
    input: inputs.get(tab),
    tabId: tab,
    strategy: settings.strategy,
    profile: settings.profile ?? defaultProfile(),
    note,
    seed: Number.isInteger(seed) ? seed : 1,
  });
  runs.set(tab, run);
  return run;
}

// A worker that stopped (idle, crashed, updated) starts again at the next
// event, a content script connecting again among them: the standalone runs
// it held are taken up again from their records (lib/standalone.js resume).
async function resumeStandalone() {
  const all = await chrome.storage.session.get(null);
  for (const [key, rec] of Object.entries(all)) {
    if (!key.startsWith('standalone:') || !rec || typeof rec !== 'object' || rec.ended_at ||
        !Number.isInteger(rec.tab) || runs.has(rec.tab)) {
      continue;
    }
    try {
      const settings = await loadSettings(chrome.storage.local);
      if (!settings.ok) throw new Error('the saved strategy no longer passes its checks');
      const tab = await attachTab(rec.tab, rec.seed);
      await newRun(tab, settings, rec.seed).resume(rec);
    } catch (e) {
      await chrome.storage.session.set({[key]: {...rec, state: 'failed', ended_at: Date.now()}});
      await note('standalone: the run on tab ' + rec.tab + ' could not be taken up again: ' +
                     (e && e.message ? e.message : e), 'failed');
    }
  }
}
const resumed = resumeStandalone().catch(() => {});

chrome.runtime.onMessage.addListener((m, sender, respond) => {
  // Only the extension's own pages (the popup, the options page): a content
  // script's sender URL is the shop page's.
  const own = sender.id === chrome.runtime.id && typeof sender.url === 'string' &&
      sender.url.startsWith(chrome.runtime.getURL(''));
  if (!m || m.standalone !== 'start' || !own) return false;
  resumed.then(() => startStandalone(m)).then(
      (r) => respond({ok: true, ...r}),
      (e) => {
        note('standalone: ' + (e && e.message ? e.message : e), 'failed');
        respond({ok: false, message: String(e && e.message ? e.message : e)});
      });
  return true;
});
