// The checks of a strategy's `notify`, `notify_body` and `notify_on`, with
// the messages of include/seckill/browser/webhook.hpp (try_parse_webhook,
// try_parse_notice_filter). Standalone mode sends no notice: these only make
// a strategy file that the C++ grabber refuses be refused here too.
// Inputs are byte strings (key_value.js). Plain ES module: no eval.

export const WEBHOOK_PRESETS = 'json, get, ntfy, bark, serverchan, telegram';
export const WEBHOOK_PLACEHOLDERS =
    'event, title, text, sku, quantity, tab, time, shop, screenshot';
const PLACEHOLDERS = WEBHOOK_PLACEHOLDERS.split(', ');

/** The notice kinds of a `notify_on` list: a Set of names, or `{ why }`. */
export function tryParseNoticeFilter(list) {
  const kinds = new Set();
  for (let w of list.split(',')) {
    w = w.replace(/^[ \t]+/, '').replace(/[ \t]+$/, '');
    if (w === 'all')
      ['ordered', 'failed', 'sold-out', 'hand-off', 'stock', 'stopped'].forEach((k) => kinds.add(k));
    else if (w === 'ordered' || w === 'failed' || w === 'stock' || w === 'stopped')
      kinds.add(w);
    else if (w === 'sold-out' || w === 'sold_out')
      kinds.add('sold-out');
    else if (w === 'hand-off' || w === 'hand_off')
      kinds.add('hand-off');
    else {
      return {
        why: `notify_on: unknown event '${
            w.slice(0, 32)}' (known: ordered, failed, sold-out, hand-off, stock, stopped, all)`,
      };
    }
  }
  return {kinds};
}

function asciiIEqual(a, b) {
  return a.length === b.length && a.toLowerCase() === b.toLowerCase() && /^[\x00-\x7f]*$/.test(a);
}

// What is wrong with an http(s) URL, or "" (never a part that may be secret).
function urlProblem(url) {
  const sep = url.indexOf('://');
  if (sep < 0) return {why: 'is no absolute URL (expected http:// or https://)'};
  const scheme = url.slice(0, sep);
  const tls = asciiIEqual(scheme, 'https');
  if (!tls && !asciiIEqual(scheme, 'http')) {
    const plain = scheme !== '' && scheme.length <= 16 && /^[a-zA-Z]*$/.test(scheme);
    return {
      why: plain ? `has the scheme '${scheme}' (expected http or https)` :
                   'has no http:// or https:// scheme'
    };
  }
  for (const c of url) {
    const u = c.charCodeAt(0);
    if (u <= 0x20 || u === 0x7f) {
      return {why: 'has a space or a control character (percent-encode it: %20 for a space)'};
    }
  }
  const rest = url.slice(sep + 3);
  const end = rest.search(/[/?#]/);
  let authority = end < 0 ? rest : rest.slice(0, end);
  let tail = end < 0 ? '' : rest.slice(end);
  const hash = tail.indexOf('#');
  if (hash >= 0) tail = tail.slice(0, hash);
  const at = authority.lastIndexOf('@');
  if (at >= 0) authority = authority.slice(at + 1);
  let host = authority;
  let port = '';
  if (authority !== '' && authority[0] === '[') {
    const close = authority.indexOf(']');
    if (close < 0) return {why: 'has an unclosed [ in its host'};
    host = authority.slice(1, close);
    const after = authority.slice(close + 1);
    if (after !== '' && after[0] !== ':') return {why: 'has text after its [host]'};
    if (after !== '') port = after.slice(1);
  } else if (authority.lastIndexOf(':') >= 0) {
    const colon = authority.lastIndexOf(':');
    host = authority.slice(0, colon);
    port = authority.slice(colon + 1);
  }
  if (host === '') return {why: 'has no host'};
  if (/[{} \t]/.test(host)) {
    return {
      why:
          'has a placeholder or a space in its host (only the path and query may have placeholders)'
    };
  }
  if (port !== '') {
    let n = 0;
    for (const c of port) {
      if (c < '0' || c > '9' || n > 65535)
        return {why: 'has a port that is not a number in [1, 65535]'};
      n = n * 10 + (c.charCodeAt(0) - 48);
    }
    if (n === 0 || n > 65535) return {why: 'has a port that is not a number in [1, 65535]'};
  }
  return {target: tail === '' || tail[0] !== '/' ? `/${tail}` : tail};
}

// Every `{name}` known, every brace balanced (`{{` and `}}` stand for one): "" or what is wrong.
function templateProblem(t) {
  for (let i = 0; i < t.length; ++i) {
    if (t[i] === '}') {
      if (i + 1 < t.length && t[i + 1] === '}') {
        ++i;
        continue;
      }
      return `an unbalanced '}' at column ${i + 1} (write }} for a brace)`;
    }
    if (t[i] !== '{') continue;
    if (i + 1 < t.length && t[i + 1] === '{') {
      ++i;
      continue;
    }
    const rest = t.slice(i + 1).search(/[{}]/);
    const close = rest < 0 ? -1 : i + 1 + rest;
    if (close < 0 || t[close] === '{') {
      return `an unbalanced '{' at column ${i + 1} (write {{ for a brace)`;
    }
    const name = t.slice(i + 1, close);
    if (!PLACEHOLDERS.includes(name)) {
      const shown = name.slice(0, 24).replace(/[\x00-\x1f]/g, '?');
      return `an unknown placeholder {${shown}} at column ${i + 1} (known: ${
          WEBHOOK_PLACEHOLDERS})`;
    }
    i = close;
  }
  return '';
}

/** Checks `notify` (and its body template): `{ type, url }`, or `{ why }` ("notify: ..."). */
export function tryParseWebhook(spec, body) {
  const bad = (w) => ({why: `notify: ${w}`});
  let type = 'json';
  let url = spec;
  const colon = spec.indexOf(':');
  if (colon >= 0 && spec.slice(colon, colon + 3) !== '://') {
    const preset = spec.slice(0, colon);
    url = spec.slice(colon + 1);
    if (['json', 'get', 'ntfy', 'bark', 'serverchan', 'telegram'].includes(preset)) {
      type = preset;
    } else {
      const word = preset !== '' && preset.length <= 16 && /^[a-z]*$/.test(preset);
      return bad(
          word ? `unknown preset '${preset}' (known: ${WEBHOOK_PRESETS})` :
                 `expected [<preset>:]http(s)://host/... (presets: ${WEBHOOK_PRESETS})`);
    }
  }
  const parts = urlProblem(url);
  if (parts.why) return bad(`the URL ${parts.why}`);
  const t = templateProblem(url);
  if (t) return bad(`the URL has ${t}`);
  if (body !== '') {
    if (type !== 'json' || spec.slice(0, 5) === 'json:') {
      return bad('a body template goes with a plain URL, not with a preset');
    }
    const b = templateProblem(body);
    if (b) return bad(`the body has ${b}`);
    type = 'body';
  }
  const target = parts.target;
  if (type === 'telegram') {
    if (!target.startsWith('/bot') || target.length < 5 || target[4] === '?') {
      return bad(
          'a telegram URL is https://api.telegram.org/bot<TOKEN>?chat_id=<chat>: no /bot<TOKEN>');
    }
    if (!target.includes('?chat_id=') && !target.includes('&chat_id=')) {
      return bad('a telegram URL needs ?chat_id=<chat> (the chat the bot writes to)');
    }
  }
  if ((type === 'bark' || type === 'ntfy') && target.includes('?')) {
    return bad('a bark or ntfy URL takes no query (the title and text are added to it)');
  }
  return {type, url};
}
