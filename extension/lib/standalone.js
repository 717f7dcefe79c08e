// Standalone mode: the extension decides by itself, with no native host.
// The content script reports what it sees (lib/page_link.js); on a stock
// status that says in stock, the run reads the offers, decides with
// lib/strategy.js (the strategy written once, held to the C++ by
// tests/browser/strategy_cases.json), and acts through lib/actions.js
// (the actionability checks, then trusted input through chrome.debugger),
// with the strategy's pace, burst and random pauses. The run's record lives
// in chrome.storage.session ("standalone:<tab>"), the state and log the
// popup shows too; nothing is left in the page. A worker that stopped
// (idle, crashed, updated) takes its runs up again from their records
// (resume); a press that may have left is never made again.

import * as actions from './actions.js';
import {containsAny} from './profile.js';
import {parseTimeLeft} from './sale_time.js';
import {pauses, plan} from './strategy.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The CDP backend's page_driver defaults (page_driver_options).
const CLICK = {
  move_steps: 2,
  press_ms: 15,
  press_jitter_ms: 0,
  path_jitter: 0,
  timeout_ms: 3000
};
const ACTION_TIMEOUT_MS = 3000;

/** What the content script reads of the offers and the status, from a profile. */
export function readSettings(p) {
  return {
    layout: p.offers,
    offers: p.offer_selector,
    status: p.status,
    sku: p.sku,
    name: p.name,
    price: p.price,
    stock: p.stock,
    category: p.category,
    unavailable: p.unavailable,
  };
}

/** What the content script watches, from a profile. */
export function watchSettings(p) {
  return {
    status: p.status,
    result: p.result,
    offers: p.offers === 'list' ? p.offer_selector : null,
    countdown: p.countdown || null,
    logged_in: p.logged_in || null,
    // The common checks (content.js adds them) and the profile's own.
    verification: p.verification_off
      ? null
      : {own: p.verification || null, more_texts: p.verification_text || []},
  };
}

// A token bucket: `rate` tokens a second, at most `burst` saved.
class Pace {
  constructor(rate, burst) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.at = Date.now();
  }
  async take() {
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) / 1000) * this.rate);
      this.at = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await sleep(Math.ceil(((1 - this.tokens) / this.rate) * 1000));
    }
  }
}

/**
 * One standalone run on one tab. `deps`: {link (PageLink), input (the tab's
 * TabInput), tabId, strategy, profile (as lib/settings.js checked them),
 * note(text, state) (the popup's log)}.
 */
export class StandaloneRun {
  constructor(deps) {
    Object.assign(this, deps);
    this.p = deps.strategy.profile ?? deps.profile;
    this.pace = new Pace(deps.strategy.actions_per_second, deps.strategy.burst);
    this.pause = pauses(deps.strategy, deps.seed ?? 1);
    this.busy = false;
    this.done = false;
    this.awaiting = false;
    this.tries = 0;
    this.countdownText = null;  // the countdown's last text
    this.countdownAt = null;    // the start a countdown set (local ms), or null
    this.verifying = ['', ''];  // what the two verification watches see ('': nothing)
    this.handedOff = '';        // the verification the person is asked to solve
    this.key = 'standalone:' + deps.tabId;
    this.seed = deps.seed ?? 1;
    this.saving = Promise.resolve();  // the record's writes, one after another
  }

  // Merges `fields` into the run's record. Each write reads the record and
  // sets it again, so writes go one after another: two at once would each
  // lose the other's fields (an end, an answer).
  record(fields) {
    const write = this.saving.then(async () => {
      const got = await chrome.storage.session.get(this.key);
      await chrome.storage.session.set({[this.key]: {...(got[this.key] || {}), ...fields}});
    });
    this.saving = write.catch(() => {});
    return write;
  }

  async start() {
    const s = this.strategy;
    const from = s.start !== null ? Math.max(Date.now(), s.start.at_ms) : Date.now();
    this.deadline = from + s.deadline_ms;
    await this.record({
      tab: this.tabId,
      seed: this.seed,
      started_at: Date.now(),
      deadline: this.deadline,
      state: 'watching',
      tries: 0,
    });
    await this.note(
        'standalone: watching tab ' + this.tabId + ' (mode ' + s.mode + ')', 'watching');
    await this.watchFromNow();
  }

  async watchFromNow() {
    const s = this.strategy;
    this.armDeadline();
    if (s.start !== null && s.start.at_ms > Date.now()) {
      this.startTimer = setTimeout(() => this.react(), s.start.at_ms - Date.now());
    }
    await this.link.watch(this.tabId, watchSettings(this.p));
    await this.react();
  }

  // Takes the run up again from its record `rec` after the worker stopped:
  // the same deadline and count of tries. When a press may have left
  // (recorded as pressing, with no answer recorded), it is never made again:
  // the page's result line saying the shop's success ends the run as
  // ordered, anything else ends it as failed, saying why.
  async resume(rec) {
    this.tries = Number.isInteger(rec.tries) ? rec.tries : 0;
    this.deadline = rec.deadline;
    if (!(this.deadline > Date.now())) {
      await this.finish('failed', 'the deadline passed while the extension was stopped');
      return;
    }
    if (Number.isInteger(rec.pressing) && rec.pressing !== rec.answered) {
      await this.link.watch(this.tabId, watchSettings(this.p));
      let text = null;
      try {
        text = await this.link.request(this.tabId, 'read_text', [this.p.result], ACTION_TIMEOUT_MS);
      } catch (e) {
      }
      if (text && containsAny(text, this.p.success)) {
        await this.finish('ordered', 'ordered: ' + text + ' (seen as the extension started again)');
      } else {
        await this.finish('failed',
            'the extension stopped after pressing buy and the shop\'s answer was not seen: ' +
                'look at the shop before buying again');
      }
      return;
    }
    await this.record({state: 'watching', resumed_at: Date.now()});
    await this.note('standalone: resumed on tab ' + this.tabId + ' after the extension stopped',
                    'watching');
    await this.watchFromNow();
  }

  armDeadline() {
    clearTimeout(this.timer);
    this.timer = setTimeout(
        () => this.finish('failed', 'the deadline passed with no order'),
        Math.max(0, this.deadline - Date.now()));
  }

  // A countdown's text moves the start while the run has not acted and the
  // strategy gives no start, as the grabber's take_countdown does.
  takeCountdown(text) {
    if (this.strategy.start !== null || this.tries > 0 || text === this.countdownText) return;
    const seen = this.countdownText !== null && this.countdownText !== '';
    this.countdownText = text;
    if (text === '') {
      if (!seen || this.countdownAt === null) return;
      this.schedule(Date.now());
      this.note('standalone: the countdown is gone: starting now');
      return;
    }
    const left = parseTimeLeft(text);
    if (left === null) {
      this.note('standalone: the countdown shows no time left: \'' + text + '\' (start unchanged)');
      return;
    }
    this.schedule(Date.now() + left);
    this.note(
        'standalone: countdown \'' + text + '\': start in ' + (left / 1000).toFixed(3) + ' s');
  }

  schedule(at) {
    this.countdownAt = at;
    this.deadline = Math.max(at, Date.now()) + this.strategy.deadline_ms;
    this.armDeadline();
    // A resumed run keeps the deadline the countdown moved.
    this.record({deadline: this.deadline}).catch(() => {});
    clearTimeout(this.startTimer);
    this.startTimer = setTimeout(() => this.react(), Math.max(0, at - Date.now()));
  }

  async finish(state, text) {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    clearTimeout(this.startTimer);
    await this.record({state, ended_at: Date.now()});
    await this.note('standalone: ' + text, state);
  }

  // A verification shows (the common checks or the profile's own): the run
  // presses nothing until the person solved it in the tab, then goes on.
  verification(which, text) {
    this.verifying[which === 1 ? 1 : 0] = text;
    const now = this.verifying[1] || this.verifying[0];
    if (!now === !this.handedOff) return;  // still shown, or still none
    this.handedOff = now;
    if (now) {
      this.record({state: 'waiting'}).catch(() => {});
      this.note('standalone: a verification shows (' + now + '): solve it in the tab; ' +
                    'nothing is pressed until it is gone', 'waiting');
      return;
    }
    this.record({state: 'watching'}).catch(() => {});
    this.note('standalone: the verification is gone: watching again', 'watching');
    this.react();
  }

  // A content script's report.
  onEvent(ev) {
    if (this.done) return;
    if (ev.kind === 'verification') {
      this.verification(ev.which, ev.present ? ev.text : '');
    } else if (ev.kind === 'countdown') {
      this.takeCountdown(ev.present ? ev.text : '');
    } else if (ev.kind === 'result' && ev.present && !ev.initial && ev.text && this.awaiting) {
      this.answered(ev.text);
    } else if (ev.kind === 'status' || ev.kind === 'offers' || ev.kind === 'route') {
      this.react();
    }
  }

  async answered(text) {
    this.awaiting = false;
    await this.record({answered: this.tries});
    if (containsAny(text, this.p.success)) {
      await this.finish('ordered', 'ordered: ' + text);
      return;
    }
    await this.note('standalone: the shop refused: ' + text);
    if (this.tries > this.strategy.retries) {
      await this.finish('failed', 'refused ' + this.tries + ' time(s)');
    } else {
      this.react();
    }
  }

  // Looks at the page and acts when the strategy says so.
  async react() {
    if (this.done || this.busy || this.awaiting || this.handedOff) return;
    if (this.countdownAt !== null && Date.now() < this.countdownAt) return;
    this.busy = true;
    try {
      // The countdown as watching starts, before anything is chosen.
      if (this.p.countdown && this.countdownText === null && this.strategy.start === null) {
        const t =
            await this.link.request(this.tabId, 'read_text', [this.p.countdown], ACTION_TIMEOUT_MS);
        this.takeCountdown(t === null ? '' : t);
        if (this.countdownAt !== null && Date.now() < this.countdownAt) return;
      }
      const shop = await this.link.request(
          this.tabId, 'read_shop', [readSettings(this.p)], ACTION_TIMEOUT_MS);
      const r = plan(this.strategy, shop, Date.now(), this.p);
      if (r.action === 'watch') {
        await this.note('standalone: in stock: ' + shop.status);
        return;
      }
      if (r.action !== 'press' && r.action !== 'would-press') return;
      const d = r.decision;
      ++this.tries;
      this.unpaced = this.tries === 1 && !this.strategy.pace_reaction;
      await this.record({state: 'decided', sku: d.sku, quantity: d.quantity, tries: this.tries});
      await this.note(
          'standalone: decided ' + d.sku + ' x' + d.quantity +
              (d.quantity < d.requested ? ' (of ' + d.requested + ' asked)' : ''),
          'decided');
      await this.step();
      if (this.p.offers === 'select') {
        await actions.select(
            this.link, this.input, this.tabId, this.p.offer_selector, d.sku, ACTION_TIMEOUT_MS);
      } else {
        const where =
            await this.link.request(this.tabId, 'offer_path', [readSettings(this.p), d.sku]);
        if (!where.found) throw new Error('the offer ' + d.sku + ' is gone');
        await actions.click(
            this.link, this.input, this.tabId,
            this.p.choose_target ? where.path + ' ' + this.p.choose_target : where.path, CLICK);
      }
      if (this.p.quantity) {
        await this.step();
        await actions.fill(
            this.link, this.input, this.tabId, this.p.quantity, String(d.quantity),
            ACTION_TIMEOUT_MS);
      }
      await this.step();
      if (r.action === 'would-press') {
        await actions.waitActionable(this.link, this.tabId, this.p.buy, CLICK.timeout_ms);
        await this.finish('decided', 'dry run: would press ' + this.p.buy);
        return;
      }
      if (this.handedOff) {  // a verification came up meanwhile: this try is not made
        --this.tries;
        return;
      }
      this.awaiting = true;
      const box = await actions.waitActionable(this.link, this.tabId, this.p.buy, CLICK.timeout_ms);
      // Recorded as the input starts: a worker stopped during it never presses again.
      await this.record({pressing: this.tries});
      await this.input.click(box, CLICK);
      await this.record({pressed: this.tries});
      await this.note('standalone: pressed ' + this.p.buy);
    } catch (e) {
      this.awaiting = false;
      await this.note('standalone: ' + (e && e.message ? e.message : e));
      if (this.tries > this.strategy.retries)
        await this.finish('failed', 'gave up after ' + this.tries + ' tries');
    } finally {
      this.busy = false;
    }
  }

  // One action's pace: a token, then the random pause (none for the first
  // try with pace_reaction = no).
  async step() {
    if (this.unpaced) return;
    await this.pace.take();
    const ms = this.pause();
    if (ms > 0) await sleep(ms);
  }
}
