// The Puppeteer side of bench/browser.cpp: the demo shop's page driven the
// idiomatic Puppeteer way, with its page API, one trial at a time.
//
//   node react.mjs <page URL> '<JSON: {executable, args, sku, quantity, pressMs}>'
//
// Launches its own Chromium (puppeteer-core: no browser download) with the
// flags it is given (seckill's), opens the page and prints "ready". Then, for
// each line "arm <n>" on stdin: starts page.waitForFunction on the stock
// status (polling on DOM mutations), prints "armed <n>" once the predicate
// has run in the page, and when the status says "In stock": page.select of
// the SKU, a triple click on the quantity and page.type of it, and
// page.click('#buy') pressing for pressMs; then prints "done <n>". "quit"
// (or the end of stdin) closes the browser. Any failure prints
// "error <message>" and exits with status 1.
import puppeteer from 'puppeteer-core';
import {createInterface} from 'node:readline';

const [url, configText] = process.argv.slice(2);
if (!url || !configText) {
  console.error('usage: node react.mjs <page URL> <JSON config>');
  process.exit(2);
}
const config = JSON.parse(configText);
const say = (line) => process.stdout.write(line + '\n');

let browser;
const fail = async (e) => {
  say('error ' + String(e && e.message ? e.message : e).replace(/\s+/g, ' '));
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
};

try {
  browser = await puppeteer.launch({
    executablePath: config.executable,
    headless: true,
    ignoreDefaultArgs: true,  // seckill's flags, not Puppeteer's own set
    args: config.args,
  });
  // The browser's first tab (its window's only one): visible, so it draws
  // frames; a second tab in the same window would be hidden.
  const [first] = await browser.pages();
  const page = first || (await browser.newPage());
  await page.goto(url, {waitUntil: 'load'});
  const visibility = await page.evaluate(() => document.visibilityState);
  if (visibility !== 'visible') throw new Error('the page is ' + visibility + ', not visible');
  say('ready');

  const trial = async (n) => {
    // Resolves on the first DOM mutation after which the status says "In
    // stock"; the predicate also marks that it ran, so the bench restocks
    // only once Puppeteer is watching.
    const flipped = page.waitForFunction(
        (id) => {
          globalThis.__benchArmed = id;
          const s = document.querySelector('.stock-status');
          return s !== null && s.textContent.includes('In stock');
        },
        {polling: 'mutation', timeout: 0}, n);
    while ((await page.evaluate(() => globalThis.__benchArmed)) !== n) {
      await new Promise((r) => setTimeout(r, 1));
    }
    say('armed ' + n);
    await flipped;
    await page.select('#sku', config.sku);
    await page.click('#quantity', {count: 3});  // selects the text typed over
    await page.type('#quantity', String(config.quantity));
    await page.click('#buy', {delay: config.pressMs});
    say('done ' + n);
  };

  const lines = createInterface({input: process.stdin});
  for await (const line of lines) {
    const [command, arg] = line.trim().split(/\s+/);
    if (command === 'quit') break;
    if (command === 'arm') await trial(Number(arg));
    else if (command) throw new Error('unknown command: ' + line);
  }
  await browser.close();
} catch (e) {
  await fail(e);
}
