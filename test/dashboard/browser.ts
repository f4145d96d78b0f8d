/**
 * Headless Chromium for the dashboard's tests and its README screenshot:
 * Debian's /usr/bin/chromium (or RAFTLOG_CHROMIUM), driven by puppeteer-core.
 */
import { accessSync, constants } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const CHROMIUM = process.env.RAFTLOG_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_PACKAGE = 'chromium';
/** A laptop screen: the page must be readable at this size. */
export const LAPTOP_VIEWPORT = { width: 1366, height: 768 } as const;

/** Why Chromium cannot run here, or null when it can. */
export function missingChromium(): string | null {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return null;
  } catch (error) {
    return `${CHROMIUM} is not an executable (${(error as Error).message})`;
  }
}

export async function launchChromium(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Tests run as root in containers, where Chromium's sandbox cannot start; /dev/shm there is often tiny.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

export async function openPage(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewport(LAPTOP_VIEWPORT);
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  return page;
}

/** What the page shows of one node, read from its row's data-* attributes. */
export interface ShownNode {
  readonly node: string;
  readonly state: string;
  readonly role?: string;
  readonly term?: string;
  readonly leader?: string;
  readonly first?: string;
  readonly snapshot?: string;
  readonly applied?: string;
  readonly commit?: string;
  readonly last?: string;
  readonly digest?: string;
  readonly match?: string;
}

export interface ShownPage {
  readonly leader: string;
  readonly term: string;
  readonly nodes: ShownNode[];
  readonly consumers: { readonly consumer: string; readonly position: string; readonly lag: string }[];
  readonly events: { readonly kind: string; readonly node: string; readonly text: string }[];
}

/**
 * Everything the page shows that a test checks, as its data-* attributes say
 * it. (No named functions inside: under tsx they would be wrapped in a helper
 * that does not exist in the page.)
 */
export async function readPage(page: Page): Promise<ShownPage> {
  return page.evaluate(() => {
    const summary = document.getElementById('summary') as HTMLElement;
    return {
      leader: summary.dataset.leader ?? '',
      term: summary.dataset.term ?? '',
      nodes: [...document.querySelectorAll('#node-rows tr[data-node]')].map((row) => ({ ...(row as HTMLElement).dataset })) as unknown as ShownNode[],
      consumers: [...document.querySelectorAll('#consumer-rows tr[data-consumer]')].map((row) => ({
        ...(row as HTMLElement).dataset,
      })) as unknown as ShownPage['consumers'],
      events: [...document.querySelectorAll('#events li[data-kind]')].map((li) => ({
        kind: (li as HTMLElement).dataset.kind ?? '',
        node: (li as HTMLElement).dataset.node ?? '',
        text: li.textContent ?? '',
      })),
    };
  });
}
