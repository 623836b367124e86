// Accessibility and layout checks of the Accord web UI in headless Chromium, driven by
// playwright-core, with axe-core's rules: every page given, in Russian and English, at a desktop
// width (1366 px) and a phone width (360 px). Fails on any critical or serious violation and on
// any page wider than the window. Then, at phone width: the filter panel opens, a CSV export
// downloads with its byte-order mark, the Atom feed link answers with a feed, a direction
// chosen from the search box's completions becomes the direction filter, and the live notice
// says a lost connection is back rather than counting nothing. Last, every page under its own
// Content-Security-Policy: nothing of the node's refused.
//
// Usage: node check.mjs <base-url> '<JSON array of paths>'
// Run by crates/accord-cli/tests/browser.rs; install with `npm ci --prefix tests/browser`.
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const axeSource = readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');
const [base, pagesJson] = process.argv.slice(2);
const paths = JSON.parse(pagesJson);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const failures = [];
const report = [];
for (const [width, height] of [[1366, 900], [360, 780]]) {
  const context = await browser.newContext({ viewport: { width, height }, bypassCSP: true, acceptDownloads: true });
  const page = await context.newPage();
  for (const lang of ['ru', 'en']) {
    for (const path of paths) {
      const url = `${base}${path}${path.includes('?') ? '&' : '?'}lang=${lang}`;
      await page.goto(url, { waitUntil: 'load' });
      await page.addScriptTag({ content: axeSource });
      const violations = await page.evaluate(async () => {
        const r = await window.axe.run(document, { resultTypes: ['violations'] });
        return r.violations
          .filter((v) => v.impact === 'critical' || v.impact === 'serious')
          .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
      });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      report.push({ width, lang, path, serious: violations.length, overflow });
      if (violations.length) failures.push({ width, lang, path, violations });
      if (overflow > 0) failures.push({ width, lang, path, overflow_px: overflow });
    }
  }
  if (width === 360) {
    // The header is the name and languages, then the menu, whose links wrap onto a second line
    // rather than scroll out of sight (at 400 % zoom a desktop's page is this narrow too): every
    // menu link is within the screen without scrolling.
    await page.goto(`${base}/?lang=ru`, { waitUntil: 'load' });
    const header = await page.locator('header.top').boundingBox();
    const links = await page.locator('header nav a').count();
    const boxes = await page.locator('header nav a').evaluateAll((as) => as.map((a) => { const r = a.getBoundingClientRect(); return { x: r.x, right: r.right }; }));
    const scrolls = await page.locator('header nav').evaluate((n) => n.scrollWidth > n.clientWidth);
    const inside = boxes.every((b) => b.x >= 0 && b.right <= width);
    if (!header || header.height > 240 || links < 6 || scrolls || !inside)
      failures.push({ check: 'on a phone every menu link is on the screen, wrapping, and the header stays short', height: header && header.height, links, scrolls, boxes });
    // Filters folded into one line above the results (reachable without scrolling past twenty
    // results), the first result still on the first screen: open them and find a member checkbox.
    await page.goto(`${base}/?lang=en`, { waitUntil: 'load' });
    const firstResult = await page.locator('article.result').first().boundingBox();
    const filters = await page.locator('#filters').boundingBox();
    if (!firstResult || !filters || filters.y > firstResult.y || filters.height > 80 || firstResult.y > height)
      failures.push({ check: 'on a phone the folded filters take one line above the results, and the first result is on the first screen' });
    await page.click('#filters > summary');
    if (!(await page.locator('#filters input[name=member]').first().isVisible())) failures.push({ check: 'the filter panel opens' });
    // An export downloads, with the byte-order mark spreadsheets need.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('a[href^="/export.csv"]')]);
    const bytes = readFileSync(await download.path());
    if (!(bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)) failures.push({ check: 'CSV export starts with a BOM' });
    // The feed link answers with an Atom feed.
    const href = await page.locator('a[href^="/feeds/records.atom"]').getAttribute('href');
    const feed = await page.request.get(base + href);
    const text = await feed.text();
    if (!feed.headers()['content-type'].startsWith('application/atom+xml') || !text.includes('<feed')) failures.push({ check: 'Atom feed' });
    // A direction chosen from the completions only fills the field (the page does not go
    // elsewhere at the choice); submitted, it becomes the direction filter (the words typed
    // are dropped, the other filters kept): type, wait for the list, choose as a browser does,
    // then press Enter.
    await page.goto(`${base}/?member=KZ&lang=en`, { waitUntil: 'load' });
    const offered = await (await page.request.get(`${base}/v1/suggest?q=divid`)).json();
    const direction = offered.completions.find((c) => c.kind === 'direction');
    if (!direction) failures.push({ check: 'a direction is offered for "divid"', offered });
    else {
      await page.locator('#q').pressSequentially('divid', { delay: 20 });
      await page.waitForSelector(`#suggestions option[value="${direction.text}"]`, { state: 'attached', timeout: 15000 });
      const before = page.url();
      let navigated = false;
      const onRequest = (r) => { if (r.isNavigationRequest() && r.frame() === page.mainFrame()) navigated = true; };
      page.on('request', onRequest);
      await page.evaluate((text) => {
        const q = document.getElementById('q');
        q.value = text;
        q.dispatchEvent(new InputEvent('input', { inputType: 'insertReplacementText', bubbles: true }));
      }, direction.text);
      // A frame later: a page that went elsewhere at the choice (a form sent from the input
      // event) has asked for the next page by then.
      await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
      page.off('request', onRequest);
      if (navigated || page.url() !== before) failures.push({ check: 'choosing a completion does not leave the page', url: page.url() });
      await Promise.all([
        page.waitForURL((u) => u.searchParams.get('direction') === direction.code, { timeout: 15000 }),
        page.locator('#q').press('Enter'),
      ]);
      const u = new URL(page.url());
      if (u.searchParams.get('member') !== 'KZ' || u.searchParams.get('q')) failures.push({ check: 'the chosen direction is the filter, the member filter kept, no words', url: page.url() });
    }
    // The live notice after a phone slept: the stream's connection lost and back with nothing
    // counted says the connection is back (not "new records" with no number); a record then
    // counts as at least one. The page's EventSource is replaced by one the check drives.
    const live = await context.newPage();
    await live.addInitScript(() => {
      window.__streams = [];
      window.EventSource = class {
        constructor() { this.handlers = {}; window.__streams.push(this); }
        addEventListener(type, f) { (this.handlers[type] = this.handlers[type] || []).push(f); }
        fire(type) { (this.handlers[type] || []).forEach((f) => f({})); }
      };
    });
    await live.goto(`${base}/?lang=ru`, { waitUntil: 'load' });
    const notices = await live.evaluate(() => {
      const s = window.__streams[0];
      const text = () => document.querySelector('#live .live-shown').textContent.replace(/\s+/g, ' ').trim();
      s.fire('open');
      // Before anything to say the notice takes no room (its status line is there, empty).
      const quiet = document.getElementById('live').getBoundingClientRect().height === 0 ? 'none' : 'shown';
      s.fire('error'); s.fire('open');
      const back = text();
      s.fire('record');
      // Said at once the first time; the record's count waits its turn (every 15 s) there.
      return { quiet, back, counted: text(), said: document.getElementById('live-text').textContent };
    });
    if (notices.quiet !== 'none' || !notices.back.startsWith('Связь с узлом восстановлена') || notices.back.includes('новых записей') || !notices.counted.startsWith('1+ новых записей') || !notices.said.startsWith('Связь с узлом восстановлена'))
      failures.push({ check: 'the live notice after a lost connection', notices });
    await live.close();
  }
  await context.close();
}
// The pages under their own Content-Security-Policy (the checks above inject axe-core, which it
// refuses, so they bypass it): the browser refuses nothing of the node's own, the search box's
// completions (a fetch) and the live stream (an EventSource) included.
{
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  const refused = [];
  page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) refused.push(m.text()); });
  let policies = 0;
  for (const path of paths) {
    const r = await page.goto(`${base}${path}`, { waitUntil: 'load' });
    if (r && r.headers()['content-security-policy']) policies += 1;
  }
  await page.goto(`${base}/?lang=en`, { waitUntil: 'load' });
  await Promise.all([
    page.waitForResponse((r) => r.url().includes('/v1/suggest'), { timeout: 15000 }),
    page.locator('#q').pressSequentially('divid', { delay: 20 }),
  ]);
  const streaming = await page.evaluate(() => new Promise((ok) => {
    const s = new EventSource('/v1/stream');
    s.addEventListener('open', () => { s.close(); ok(true); });
    s.addEventListener('error', () => { s.close(); ok(false); });
  }));
  if (refused.length || policies !== paths.length || !streaming)
    failures.push({ check: 'the pages run under their own Content-Security-Policy', refused, policies, pages: paths.length, streaming });
  await context.close();
}
await browser.close();
console.log(JSON.stringify({ pages: report.length, failures }, null, 1));
process.exit(failures.length ? 1 : 0);
