// One web user over XMPP-over-WebSocket (RFC 7395) with the third-party client @xmpp/client, driven by
// server-xmpp/tests/e2e/test_websocket.py. It signs in with SCRAM-SHA-1 (asserting the server offered it),
// sends initial presence, waits for its contact to come online, sends the contact a message and waits for the
// expected answer. Every step is printed as one JSON line on stdout for the test to check; any error, or
// TIMEOUT_MS without finishing, exits 1.
//
// Environment: WS_URL, XMPP_DOMAIN, XMPP_USER, XMPP_PASSWORD, XMPP_RESOURCE, CONTACT (bare JID), SEND_BODY,
// EXPECT_BODY, TIMEOUT_MS.
import { client, xml } from "@xmpp/client";

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    fail(new Error(`${name} is not set`));
  }
  return value;
};

function say(event) {
  process.stdout.write(JSON.stringify(event) + "\n");
}

function fail(error) {
  say({ event: "error", message: String(error?.stack ?? error) });
  process.exit(1);
}

const contact = env("CONTACT");
const sendBody = env("SEND_BODY");
const expectBody = env("EXPECT_BODY");
const timer = setTimeout(
  () => fail(new Error("timed out")),
  Number(process.env.TIMEOUT_MS ?? 60000),
);

let offered = [];
const xmpp = client({
  service: env("WS_URL"),
  domain: env("XMPP_DOMAIN"),
  resource: env("XMPP_RESOURCE"),
  // Chooses the mechanism itself, so the test proves SCRAM was used, whatever the library would prefer.
  credentials: async (authenticate, mechanisms) => {
    offered = mechanisms;
    if (!mechanisms.includes("SCRAM-SHA-1")) {
      throw new Error(`SCRAM-SHA-1 not offered: ${mechanisms}`);
    }
    await authenticate(
      { username: env("XMPP_USER"), password: env("XMPP_PASSWORD") },
      "SCRAM-SHA-1",
    );
  },
});
// No reconnection: a dropped connection is a failure here.
xmpp.reconnect.stop();

xmpp.on("error", fail);

let sent = false;
xmpp.on("stanza", async (stanza) => {
  const from = stanza.attrs.from ?? "";
  const bare = from.split("/")[0];
  if (stanza.is("presence") && bare === contact && !stanza.attrs.type) {
    say({ event: "presence", from });
    if (!sent) {
      sent = true;
      await xmpp.send(
        xml("message", { to: contact, type: "chat", id: "ws1" }, xml("body", {}, sendBody)),
      );
      say({ event: "sent", to: contact, body: sendBody });
    }
  } else if (stanza.is("message")) {
    const body = stanza.getChildText("body");
    if (stanza.attrs.type === "error") {
      fail(new Error(`error message: ${stanza.toString()}`));
    }
    if (body === null) {
      return;
    }
    say({ event: "message", from, body });
    if (body === expectBody) {
      clearTimeout(timer);
      await xmpp.stop();
      say({ event: "done" });
      process.exit(0);
    }
  }
});

xmpp.on("online", async (address) => {
  say({ event: "online", jid: address.toString(), offered });
  await xmpp.send(xml("presence"));
});

xmpp.start().catch(fail);
