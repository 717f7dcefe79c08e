#pragma once
/// @file
/// @brief The JavaScript a page_driver sends to read a shop page by its
///        site_profile. Like browser/detail/page_scripts.hpp, each script is
///        one function's source and every value (the profile, a SKU) is a
///        call argument, never part of the source; each runs with the finder
///        in front (scripts::deep), so selectors reach into open shadow roots
///        and same-origin frames. Standard library only.

#include <seckill/browser/detail/page_scripts.hpp>

#include <string_view>

namespace seckill::browser::detail::scripts {

/// (p) -> {status, offers: [{sku, name, category, price, stock}]}, `p` the
/// profile's selectors ({status, layout, offers, sku, name, price, stock,
/// category, unavailable}, each field {child, attribute, given}). A select's options
/// give value, label, data-price, data-stock and data-category; a list's
/// elements give their fields as the profile says. A price or a count is the
/// first number in its text ("¥12.50", "剩 3 件"); none is NaN (unknown price,
/// no stock).
inline constexpr std::string_view read_shop = R"js((p) => {
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
})js";

/// (p, sku) -> {found: false} | {found: true, path}. The offer element of a
/// list whose SKU field is `sku`, as a selector that names it (the hosts of
/// the offers' selector, then a chain of :nth-child steps from its
/// document's root or its shadow root's top), so a trusted click can find it.
inline constexpr std::string_view offer_path = R"js((p, sku) => {
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
})js";

/// (sel) -> a number or null: the whole number an element shows (an input's
/// value, else its text); null when there is no such element or no number.
inline constexpr std::string_view read_count = R"js((sel) => {
  const el = find(sel);
  if (!el) return null;
  const s = 'value' in el && el.tagName !== 'BUTTON' ? String(el.value) : (el.textContent || '');
  const m = s.match(/-?\d+/);
  return m ? Number(m[0]) : null;
})js";

/// (sel) -> true when an element matches `sel`.
inline constexpr std::string_view exists = R"js((sel) => find(sel) !== null)js";

/// (sel) -> the trimmed text of the first element matching `sel`, or null.
inline constexpr std::string_view read_text = R"js((sel) => {
  const el = find(sel);
  return el === null ? null : (el.textContent || '').trim();
})js";

/// (n) -> [{sent, received, date}]: n HEAD requests of the page's own URL
/// (a request of seckill's, not one of the page's), each with the local
/// times around it (Date.now(), ms) and the response's Date header. A
/// request that fails or has no Date is left out.
inline constexpr std::string_view date_samples = R"js(async (n) => {
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
})js";

/// (sel, n) -> [{before, after, text}]: up to n changes of the text of the
/// first element matching `sel`, each with the local times (ms) of the last
/// read that showed the old text and of the first that showed the new one:
/// the page set the new time between them. Reads yield to the page between
/// them; at most 2.5 s in all.
inline constexpr std::string_view clock_texts = R"js((sel, n) => new Promise((resolve) => {
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
}))js";

/// (times) -> [{sent, received, date}]: a HEAD request of the page's own URL
/// sent at each of the local times given (ms since the epoch, as Date.now()),
/// without waiting for the one before; as date_samples otherwise.
inline constexpr std::string_view date_samples_at = R"js(async (times) => {
  const one = async (at) => {
    const wait = at - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    try {
      const sent = Date.now();
      const r = await fetch(location.href, {method: 'HEAD', cache: 'no-store'});
      const received = Date.now();
      const date = r.headers.get('date');
      return date ? {sent, received, date} : null;
    } catch (e) {
      return null;
    }
  };
  return (await Promise.all(times.map(one))).filter((x) => x !== null);
})js";

}  // namespace seckill::browser::detail::scripts
