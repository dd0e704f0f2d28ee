#!/usr/bin/env node
// node drive.js URL CALLS.json [--chromium /usr/bin/chromium]
//
// Opens the page in headless Chromium (playwright-core, the browser Debian installs: nothing is
// downloaded), waits for the model, runs each call of CALLS.json on window.rise, and prints one JSON
// object: {"ready": ..., "results": [...], "console_errors": [...]}. A call is
// {"call": "evaluate" | "qOnFrames" | "preprocessScreens", "args": [...]} or {"call": "watch",
// "seconds": S}: let the page play on its own for S seconds and report its counters.
'use strict';

const fs = require('fs');
const { chromium } = require('playwright-core');

async function main(argv) {
  const [url, callsPath] = argv.filter((a, i) => !a.startsWith('--') && argv[i - 1] !== '--chromium');
  const at = argv.indexOf('--chromium');
  const executablePath = at >= 0 ? argv[at + 1] : '/usr/bin/chromium';
  if (!url || !callsPath) {
    console.error('usage: node drive.js URL CALLS.json [--chromium PATH]');
    return 2;
  }
  if (!fs.existsSync(executablePath)) {
    console.error(`drive.js: error: no Chromium at ${executablePath}; install Debian's: apt-get install chromium`);
    return 2;
  }
  const calls = JSON.parse(fs.readFileSync(callsPath, 'utf8'));
  // The flags keep a headless Chromium off the network (this machine's is closed) and quiet.
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const errors = [];
  try {
    const page = await browser.newPage();
    page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()); });
    page.on('pageerror', (error) => errors.push(String(error)));
    await page.goto(url);
    const ready = await page.evaluate(() => window.rise.ready);
    const results = [];
    for (const call of calls) {
      if (call.call === 'watch') {
        const before = await page.evaluate(() => window.rise.stats());
        await page.waitForTimeout(1000 * call.seconds);
        const after = await page.evaluate(() => window.rise.stats());
        results.push({ steps: after.steps - before.steps, episodes: after.episodes - before.episodes,
          successes: after.successes - before.successes, seconds: call.seconds });
      } else {
        results.push(await page.evaluate(({ name, args }) => window.rise[name](...args),
          { name: call.call, args: call.args || [] }));
      }
    }
    console.log(JSON.stringify({ ready, results, console_errors: errors }));
  } finally {
    await browser.close();
  }
  return 0;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (error) => {
  console.error(`drive.js: error: ${error.message}`);
  process.exitCode = 1;
});
