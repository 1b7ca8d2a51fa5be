// Firefox (Debian's firefox-esr) over WebDriver BiDi with puppeteer-core: one browser process and
// fresh profile per launch, tabs as targets of the Playwright-like Page in page.mjs.
import puppeteer from 'puppeteer-core';
import { installAgent } from './agent.mjs';
import { Context } from './page.mjs';

/** Firefox prefs of every launch. */
export const FIREFOX_PREFS = {
  // navigator.storage.persist() shows a permission prompt and waits for the user; automation has
  // none, so answer it the way Firefox's own tests do: granted.
  'dom.storageManager.prompt.testing': true,
  'dom.storageManager.prompt.testing.allow': true,
  // Tests and the bench drive several tabs at once, only one of them in front. Firefox runs the
  // timers of a hidden tab at most once a second (and budgets them); headless Chromium treats
  // every tab as visible. Same conditions for both: no background throttling.
  'dom.min_background_timeout_value': 4,
  'dom.min_background_timeout_value_without_budget_throttling': 4,
  'dom.timeout.enable_budget_timer_throttling': false,
};

const AGENT = `(${installAgent})(false)`;

class FirefoxTarget {
  constructor(page) {
    this.page = page;
    this.onLog = () => {};
    page.on('pageerror', (e) => this.onLog({ kind: 'pageerror', text: e?.message ?? String(e) }));
    page.on('console', (m) => this.onLog({ kind: 'console', type: m.type(), text: m.text() }));
  }

  async evaluate(src, arg) {
    const json = await this.page.evaluate(`${AGENT}; window.__e2e.run(${JSON.stringify(src)}, ${JSON.stringify(arg)})`);
    return JSON.parse(json);
  }

  async goto(url) {
    await this.page.goto(url, { waitUntil: 'load' });
  }

  async reload() {
    await this.page.reload({ waitUntil: 'load' });
  }

  async bringToFront() {
    await this.page.bringToFront();
  }

  async screenshot({ fullPage }) {
    return Buffer.from(await this.page.screenshot({ fullPage, type: 'png' }));
  }

  async close() {
    await this.page.close();
  }
}

/**
 * Launches Firefox on the fresh profile `dir` with `prefs` on top of FIREFOX_PREFS; resolves to
 * `{ context, close }` parts.
 */
export async function launchFirefox(dir, { prefs = {} } = {}) {
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: process.env.FIREFOX ?? '/usr/bin/firefox-esr',
    headless: true,
    userDataDir: dir,
    extraPrefsFirefox: { ...FIREFOX_PREFS, ...prefs },
    protocolTimeout: 600_000,
  });
  // The first tab is kept blank: closing the last tab would end the browser.
  const engine = {
    async newTarget() {
      return new FirefoxTarget(await browser.newPage());
    },
    async close() {
      await browser.close();
    },
  };
  return { context: new Context(engine), close: () => browser.close(), version: await browser.version() };
}
