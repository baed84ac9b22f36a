// Checks pages in headless chromium: node browser.cjs NAME=URL ...
// Each page at desktop and phone width: waits for the headline, then the bulletin's 13
// figures (typed from shared/bulletin.md), no console errors, no horizontal overflow; a
// full-page screenshot per width in $SHOTS.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const shots = process.env.SHOTS;
const widths = [
  { name: "desktop", viewport: { width: 1280, height: 900 } },
  { name: "phone", viewport: { width: 390, height: 844 } },
];

// [statement, how to read it from the DOM, what the bulletin says]
const text = (sel) => `(document.querySelector(${JSON.stringify(sel)}) || {}).innerText`;
const row = (breakdown, member) =>
  `(document.querySelector('[data-breakdown="${breakdown}"] tr[data-member="${member}"]') || {}).innerText`;
const item = (list, i) => `((document.querySelectorAll('[data-leaders="${list}"] li')[${i}]) || {}).innerText`;
const checks = [
  ["1 total 322.39 bn yuan", text("[data-figure=ytd_cny]"), ["322.39 bn yuan"]],
  ["2 in dollars $44.17 bn", text("[data-figure=ytd_usd]"), ["$44.17 bn"]],
  ["3 growth +29.0 %", text("#headline [data-figure=ytd_yoy_pct]"), ["+29.0 %"]],
  ["4 first nationwide", text("[data-figure=yoy_rank]"), ["1"], true],
  ["4 highlighted first among the provinces", text("#provinces tr.chosen"), ["1", "Xinjiang", "+29.0 %"]],
  ["5 Belt and Road 297.85 bn +25.8 % 92.4 %", row("total/partner_group", "belt_and_road"), ["Belt and Road", "297.85 bn", "+25.8 %", "92.4 %"]],
  ["6 Central and Eastern Europe first, +437.1 %", item("total/partner_region/by_yoy", 0), ["Central and Eastern Europe", "+437.1 %"]],
  ["7 private 298.35 bn +28.2 % 92.5 %", row("total/enterprise_type", "private"), ["Private", "298.35 bn", "+28.2 %", "92.5 %"]],
  ["8 state-owned 21.68 bn +42.6 %", row("total/enterprise_type", "state_owned"), ["State-owned", "21.68 bn", "+42.6 %"]],
  ["9 foreign-invested 1.87 bn +19.4 %", row("total/enterprise_type", "foreign_invested"), ["Foreign-invested", "1.87 bn", "+19.4 %"]],
  ["10 exports led by labour-intensive", item("export/commodity/by_share", 0), ["Labour-intensive"]],
  ["10 ... and electromechanical products", item("export/commodity/by_share", 1), ["Electromechanical"]],
  ["11 imports: bulk commodities first", item("import/commodity/by_share", 0), ["Bulk commodities"]],
  ["12 Khorgos 6,269 trains +8.1 %", text('[data-port="khorgos/china_europe"] .facts'), ["6,269 trains", "+8.1 %"]],
  ["13 12 consecutive months above 600", text('[data-port="khorgos/china_europe"] [data-figure=streak]'), ["12 consecutive months above 600"]],
];

async function checkPage(context, name, url, width) {
  const page = await context.newPage();
  await page.setViewportSize(width.viewport);
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  // A poll the browser cancels (ERR_ABORTED, e.g. while a screenshot is taken) is no error.
  page.on("requestfailed", (r) => {
    const why = r.failure() && r.failure().errorText;
    if (why !== "net::ERR_ABORTED") errors.push(`request failed: ${r.url()} ${why}`);
  });
  const failures = [];
  await page.goto(url, { waitUntil: "load" });
  // The live page may open before the service has records; its script fills them in.
  await page.waitForSelector("[data-figure=ytd_cny]", { timeout: 120000 });
  if (name === "live") {
    // At least one round of polling, which must leave the figures in place.
    await page.waitForFunction(() => /updated|up to date/.test(document.getElementById("status").innerText), null, { timeout: 20000 });
  }
  let passed = 0;
  for (const [statement, expr, wanted, exact] of checks) {
    const got = await page.evaluate(expr);
    const ok = typeof got === "string" && (exact ? got.trim() === wanted[0] : wanted.every((w) => got.includes(w)));
    if (ok) passed += 1; else failures.push(`${statement}: got ${JSON.stringify(got)}`);
  }
  const charts = await page.evaluate(() => {
    const svgs = [...document.querySelectorAll("svg")];
    return { all: svgs.length, described: svgs.filter((s) => s.getAttribute("role") === "img" && (s.getAttribute("aria-label") || "").length > 20).length };
  });
  if (charts.all === 0 || charts.all !== charts.described) failures.push(`charts: ${charts.described} of ${charts.all} described`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) failures.push(`wider than the screen by ${overflow}px at ${width.viewport.width}px`);
  if (name.startsWith("report")) {
    const scripts = await page.evaluate(() => document.scripts.length);
    if (scripts !== 0) failures.push(`the report has ${scripts} scripts`);
  }
  const shot = path.join(shots, `${name}-${width.name}.png`);
  await page.screenshot({ path: shot, fullPage: true });
  failures.push(...errors);
  await page.close();
  console.log(`${name} ${width.name}: ${passed}/${checks.length} figures, ${charts.all} charts described, ${errors.length} console errors -> ${shot}`);
  for (const f of failures) console.log(`  FAIL ${f}`);
  return failures.length;
}

(async () => {
  const targets = process.argv.slice(2).map((a) => { const i = a.indexOf("="); return [a.slice(0, i), a.slice(i + 1)]; });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "silkroute-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  let failed = 0;
  let runs = 0;
  try {
    for (const [name, url] of targets) {
      for (const width of widths) {
        runs += 1;
        failed += await checkPage(context, name, url, width);
      }
    }
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(`browser: ${runs} page loads, ${targets.length} pages, ${failed} failures`);
  process.exit(failed === 0 ? 0 : 1);
})().catch((e) => { console.error(e); process.exit(1); });
