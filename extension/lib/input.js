// Trusted input through chrome.debugger: Input.dispatchMouseEvent,
// Input.dispatchKeyEvent and Input.insertText, the same events the CDP
// backend sends (browser/detail/page_session.hpp), with the same pacing
// (move steps, press duration) and the same kinds of jitter. Never
// element.click() or dispatchEvent. Exported for the native and the
// standalone modes alike.

import {ProtocolError} from './protocol.js';

// A seeded generator (splitmix64 on BigInt, reduced to [0, 1)): the same seed
// and the same clicks send the same input.
export const seeded = (seed) => {
  let s = BigInt.asUintN(64, BigInt(seed));
  return () => {
    s = BigInt.asUintN(64, s + 0x9e3779b97f4a7c15n);
    let z = s;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    z = z ^ (z >> 31n);
    return Number(z >> 11n) / 2 ** 53;
  };
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One tab's input: the debugger target, where the mouse is, the generator.
export class TabInput {
  constructor(tabId, seed = 1) {
    this.target = {tabId};
    this.x = 0;
    this.y = 0;
    this.random = seeded(seed);
  }

  async send(method, params) {
    try {
      return await chrome.debugger.sendCommand(this.target, method, params);
    } catch (e) {
      throw new ProtocolError('browser_closed', 'the tab is gone or detached: ' + (e && e.message ? e.message : e));
    }
  }

  mouse(type, x, y, button, buttons) {
    const p = {type, x, y, button, buttons, pointerType: 'mouse'};
    if (type !== 'mouseMoved') p.clickCount = 1;
    return this.send('Input.dispatchMouseEvent', p);
  }

  // Moves to the box's centre in `o.move_steps` steps (each but the last
  // straying up to o.path_jitter px), presses, holds o.press_ms (+ up to
  // o.press_jitter_ms), releases. The release goes out even if the press failed.
  async click(box, o) {
    const steps = Math.max(1, o.move_steps | 0);
    const x0 = this.x, y0 = this.y;
    const moves = [];
    for (let i = 1; i <= steps; i++) {
      let x = x0 + ((box.x - x0) * i) / steps, y = y0 + ((box.y - y0) * i) / steps;
      if (i < steps && o.path_jitter > 0) {
        x += (this.random() * 2 - 1) * o.path_jitter;
        y += (this.random() * 2 - 1) * o.path_jitter;
      }
      moves.push(this.mouse('mouseMoved', x, y, 'none', 0));
    }
    let press = o.press_ms || 0;
    if (o.press_jitter_ms > 0) press += Math.floor(this.random() * (o.press_jitter_ms + 1));
    // Sent back to back: the debugger keeps their order.
    const pressed = this.mouse('mousePressed', box.x, box.y, 'left', 1);
    this.x = box.x;
    this.y = box.y;
    if (press <= 0) {  // no pause to keep: the release goes out with the press
      const released = this.mouse('mouseReleased', box.x, box.y, 'left', 0);
      const all = await Promise.allSettled([...moves, pressed, released]);
      const failed = all.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      return;
    }
    let error = null;
    try {
      await Promise.all([...moves, pressed]);
    } catch (e) {
      error = e;
    }
    if (!error) await sleep(press);
    await this.mouse('mouseReleased', box.x, box.y, 'left', 0).catch((e) => { error = error || e; });
    if (error) throw error;
  }

  key(down, key, code, keyCode, modifiers = 0, command = '') {
    const p = {
      type: down ? 'rawKeyDown' : 'keyUp',
      key,
      code,
      windowsVirtualKeyCode: keyCode,
      nativeVirtualKeyCode: keyCode,
      modifiers,
    };
    if (down && command) p.commands = [command];
    return this.send('Input.dispatchKeyEvent', p);
  }

  // Presses `key` (ArrowDown / ArrowUp) `n` times.
  async arrows(key, n) {
    const code = key === 'ArrowDown' ? 40 : 38;
    const all = [];
    for (let i = 0; i < n; i++) all.push(this.key(true, key, key, code), this.key(false, key, key, code));
    await Promise.all(all);
  }

  // Replaces the focused input's text: Ctrl+A, Input.insertText (Backspace
  // for an empty text), Tab to commit.
  async type(text) {
    const all = [this.key(true, 'a', 'KeyA', 65, 2, 'selectAll'), this.key(false, 'a', 'KeyA', 65, 2)];
    if (text === '') all.push(this.key(true, 'Backspace', 'Backspace', 8), this.key(false, 'Backspace', 'Backspace', 8));
    else all.push(this.send('Input.insertText', {text}));
    all.push(this.key(true, 'Tab', 'Tab', 9), this.key(false, 'Tab', 'Tab', 9));
    await Promise.all(all);
  }
}
