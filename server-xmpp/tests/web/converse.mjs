// Converse.js (npm converse.js, its dist/ files served by a tiny local HTTP server here) in headless Chromium
// (Debian's /usr/bin/chromium, driven by playwright-core), driven by server-xmpp/tests/e2e/test_converse.py.
// One web user logs in over WebSocket or BOSH, waits until its contact is shown online in the roster, opens
// the chat, sends SEND_BODY, waits until EXPECT_BODY from the contact is shown in the chat, saves a
// screenshot to SCREENSHOT, and logs out. Every step is one JSON line on stdout; any error (or TIMEOUT_MS
// without finishing) exits 1 after saving the page's HTML and a screenshot beside SCREENSHOT.
//
// Environment: TRANSPORT (websocket|bosh), SERVICE_URL, XMPP_JID (bare), XMPP_PASSWORD, XMPP_RESOURCE,
// CONTACT (bare JID), SEND_BODY, EXPECT_BODY, SCREENSHOT, TIMEOUT_MS, CHROMIUM (default /usr/bin/chromium).
import { createServer } from "node:http";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "node_modules", "converse.js", "dist");

function say(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    say({ event: "error", message: `${name} is not set` });
    process.exit(1);
  }
  return value;
};

const transport = env("TRANSPORT");
const screenshot = env("SCREENSHOT");
const contact = env("CONTACT");
const sendBody = env("SEND_BODY");
const expectBody = env("EXPECT_BODY");
const timeout = Number(process.env.TIMEOUT_MS ?? 60000);

const settings = {
  assets_path: "/dist/",
  authentication: "login",
  auto_login: true,
  jid: `${env("XMPP_JID")}/${env("XMPP_RESOURCE")}`,
  password: env("XMPP_PASSWORD"),
  discover_connection_methods: false,
  auto_reconnect: false,
  view_mode: "fullscreen",
  show_controlbox_by_default: true,
  play_sounds: false,
  show_desktop_notifications: false,
  persistent_store: "sessionStorage",
  i18n: "en",
  loglevel: "info",
  ...(transport === "bosh"
    ? { bosh_service_url: env("SERVICE_URL") }
    : { websocket_url: env("SERVICE_URL") }),
};

const page_html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>presenced: Converse.js over ${transport}</title>
<link rel="stylesheet" href="/dist/converse.min.css"></head>
<body class="converse-fullscreen">
<script type="module">
import converse from "/dist/converse.min.js";
converse.initialize(${JSON.stringify(settings)});
</script>
</body></html>`;

const types = {
  ".js": "text/javascript",
  ".css": "text/css",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".ttf": "font/ttf",
  ".mp3": "audio/mpeg",
  ".ogg": "audio/ogg",
};

// The page and Converse's dist/ files, nothing else.
const server = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
  if (path === "/" || path === "/index.html") {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(page_html);
    return;
  }
  const rel = normalize(path).replace(/^\/+/, "");
  if (!rel.startsWith("dist/")) {
    res.writeHead(404).end();
    return;
  }
  try {
    const body = readFileSync(join(dist, rel.slice("dist/".length)));
    res.writeHead(200, { "content-type": types[extname(rel)] ?? "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const origin = `http://127.0.0.1:${server.address().port}`;

mkdirSync(dirname(screenshot), { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless=new", "--no-sandbox"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const console_lines = [];
page.on("console", (m) => console_lines.push(`${m.type()}: ${m.text()}`));
page.on("pageerror", (e) => console_lines.push(`pageerror: ${e}`));
page.on("response", (r) => r.status() >= 400 && console_lines.push(`http ${r.status()}: ${r.url()}`));

async function finish(code) {
  await browser.close().catch(() => {});
  server.close();
  process.exit(code);
}

async function fail(error) {
  const base = screenshot.replace(/\.png$/, "");
  try {
    await page.screenshot({ path: `${base}-failed.png` });
    writeFileSync(`${base}-failed.html`, await page.content());
  } catch {}
  writeFileSync(`${base}-failed.console.txt`, console_lines.join("\n"));
  say({ event: "error", message: String(error?.stack ?? error), console: console_lines.slice(-20) });
  await finish(1);
}

const timer = setTimeout(() => fail(new Error("timed out")), timeout);

// The test (python) reads these lines and answers on stdin: "go" once the contact may come online, then
// "answered" after the contact sent EXPECT_BODY.
const lines = [];
const waiters = [];
process.stdin.setEncoding("utf8");
let buffered = "";
process.stdin.on("data", (chunk) => {
  buffered += chunk;
  let nl;
  while ((nl = buffered.indexOf("\n")) >= 0) {
    const line = buffered.slice(0, nl).trim();
    buffered = buffered.slice(nl + 1);
    const w = waiters.shift();
    if (w) {
      w(line);
    } else {
      lines.push(line);
    }
  }
});
const nextLine = () =>
  lines.length ? Promise.resolve(lines.shift()) : new Promise((ok) => waiters.push(ok));

try {
  await page.goto(origin + "/");
  // Logged in: the control box shows the roster, with the contact in it.
  const item = page.locator("converse-roster-contact, .roster-contacts li, .list-item").filter({
    hasText: contact.split("@")[0],
  });
  await item.first().waitFor({ state: "visible", timeout });
  // Whether the roster shows the contact online (Converse marks an entry with its presence).
  // (its roster entry is an <li data-status=...> around a link with the contact's data-jid).
  const shownOnline = () =>
    page.evaluate(
      (jid) =>
        [...document.querySelectorAll("a[data-jid]")].some(
          (a) => a.dataset.jid === jid && a.closest("li[data-status]")?.dataset.status === "online",
        ),
      contact,
    );
  say({ event: "online", roster: await item.first().innerText(), contact_online: await shownOnline() });
  say({ event: "ready" });
  if ((await nextLine()) !== "go") {
    throw new Error("expected go");
  }
  // The contact comes online.
  const deadline = Date.now() + timeout;
  while (!(await shownOnline())) {
    if (Date.now() > deadline) {
      throw new Error("the contact was never shown online");
    }
    await page.waitForTimeout(100);
  }
  say({ event: "contact-online" });
  // Open the chat from the roster and send.
  await item.first().locator("a, .open-chat").first().click();
  const textarea = page.locator("textarea.chat-textarea").first();
  await textarea.waitFor({ state: "visible", timeout });
  await textarea.fill(sendBody);
  await textarea.press("Enter");
  await page.locator(".chat-msg__text", { hasText: sendBody }).first().waitFor({ timeout });
  say({ event: "sent", to: contact, body: sendBody });
  if ((await nextLine()) !== "answered") {
    throw new Error("expected answered");
  }
  const got = page.locator(".chat-msg__text", { hasText: expectBody }).first();
  await got.waitFor({ state: "visible", timeout });
  say({ event: "message", body: (await got.innerText()).trim() });
  await page.screenshot({ path: screenshot });
  writeFileSync(screenshot.replace(/\.png$/, ".html"), await page.content());
  say({ event: "screenshot", path: screenshot });
  clearTimeout(timer);
  // Log out, so the server sees the session end (WebSocket <close/>, BOSH terminate).
  await page
    .locator("a.logout, .logout")
    .first()
    .click({ timeout: 3000 })
    .catch(() => {});
  await page.waitForTimeout(500);
  say({ event: "done" });
  await finish(0);
} catch (e) {
  await fail(e);
}
