"""One pjsua2 SIP user agent per process, driven by JSON lines on stdin; JSON events on stdout.

pjsua2 (PyPI ``pjsua2-python``, PJSIP's C++ API, the engine of many softphones) plays a real
softphone against presenced. The test side is ``pjsua.py`` (:class:`pjsua.PjAgent`).

Why a process per user: pjsua2's Endpoint is a per-process singleton (a second one aborts the
process with an uncaught C++ exception), and pjsua picks the account of a buddy SUBSCRIBE by the
buddy URI's domain (``pjsua_acc_find_for_outgoing``), so with alice and bob in one Endpoint bob's
SUBSCRIBE would go out From alice. A separate process also lets the test kill a hung agent by pid
without taking pytest down.

usage: pjagent.py USER PASSWORD SIP_PORT LOGFILE [udp|tcp|tls]
  env PJ_TLS_CA: the CA file (PEM) that verifies the server's certificate over tls
  env PJ_PUBLISH: "0" to register without ever PUBLISHing (default "1")

commands: {"cmd":"status","state":"online|offline","activity":"busy|away|","note":"..."}
          {"cmd":"buddy","user":"bob"}  {"cmd":"im","user":"bob","text":"hi"}
          {"cmd":"unregister"} {"cmd":"register"} {"cmd":"quit"}
events:   {"ev":"ready"} {"ev":"ok","cmd":...} {"ev":"error","cmd":...,"info":...}
          {"ev":"reg","code":200,"reason":...,"expires":300}
          {"ev":"buddy","uri":...,"status":"online|offline|unknown","status_text":...,
           "activity":"busy|away|","note":...,"sub_state":...}
          {"ev":"buddy_sub","uri":...,"sub_state":...,"term_code":...,"term_reason":...}
          {"ev":"im","from":...,"content_type":...,"body":...}
          {"ev":"im_status","to":...,"code":200,"reason":...,"body":...} {"ev":"bye"}

Callbacks only record events: pjsua2's SWIG directors print and swallow exceptions raised in
callbacks, so every assertion is made by the test on the events.
"""

import json
import os
import select
import sys
import time

import pjsua2 as pj

DOMAIN = "localhost"
STATUS = {
    pj.PJSUA_BUDDY_STATUS_UNKNOWN: "unknown",
    pj.PJSUA_BUDDY_STATUS_ONLINE: "online",
    pj.PJSUA_BUDDY_STATUS_OFFLINE: "offline",
}
ACTIVITY = {
    pj.PJRPID_ACTIVITY_UNKNOWN: "",
    pj.PJRPID_ACTIVITY_AWAY: "away",
    pj.PJRPID_ACTIVITY_BUSY: "busy",
}
TRANSPORTS = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP, "tls": pj.PJSIP_TRANSPORT_TLS}
#: seconds the agent keeps pumping events after its unregister at quit
SHUTDOWN_PUMP = 0.5

# pjlib prints its banner on fd 1 at libCreate(), before any log config applies: keep the real
# stdout for events only and send everything else written to fd 1 to stderr.
EVENTS = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)


def emit(**ev) -> None:
    EVENTS.write(json.dumps(ev) + "\n")
    EVENTS.flush()


class Acc(pj.Account):
    def onRegState(self, prm):
        emit(ev="reg", code=prm.code, reason=prm.reason, expires=prm.expiration)

    def onInstantMessage(self, prm):
        emit(ev="im", **{"from": prm.fromUri}, content_type=prm.contentType, body=prm.msgBody)

    def onInstantMessageStatus(self, prm):
        emit(ev="im_status", to=prm.toUri, code=prm.code, reason=prm.reason, body=prm.msgBody)


class Bud(pj.Buddy):
    def onBuddyState(self):
        i = self.getInfo()
        p = i.presStatus
        emit(ev="buddy", uri=i.uri, status=STATUS.get(p.status, p.status), status_text=p.statusText,
             activity=ACTIVITY.get(p.activity, p.activity), note=p.note, sub_state=i.subStateName)

    def onBuddyEvSubState(self, prm):
        i = self.getInfo()
        emit(ev="buddy_sub", uri=i.uri, sub_state=i.subStateName, term_code=i.subTermCode,
             term_reason=i.subTermReason)


def presence_status(c: dict) -> "pj.PresenceStatus":
    ps = pj.PresenceStatus()
    online = c["state"] == "online"
    ps.status = pj.PJSUA_BUDDY_STATUS_ONLINE if online else pj.PJSUA_BUDDY_STATUS_OFFLINE
    ps.activity = {"busy": pj.PJRPID_ACTIVITY_BUSY, "away": pj.PJRPID_ACTIVITY_AWAY}.get(
        c.get("activity", ""), pj.PJRPID_ACTIVITY_UNKNOWN)
    ps.note = c.get("note", "")
    return ps


def main(user: str, password: str, sip_port: int, logfile: str, transport: str = "udp") -> None:
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0            # no pjsip worker thread ...
    cfg.uaConfig.mainThreadOnly = True    # ... callbacks run inside libHandleEvents() in this thread
    cfg.uaConfig.userAgent = f"pjsua2-e2e/{ep.libVersion().full}"
    cfg.logConfig.level = 5               # 5: every SIP message in full, in logfile
    cfg.logConfig.consoleLevel = 0        # keep stdout for the JSON events
    cfg.logConfig.filename = logfile
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()       # no sound card needed
    tc = pj.TransportConfig()
    tc.port = 0                           # a random loopback port
    tc.boundAddress = "127.0.0.1"
    if transport == "tls":                # the wheel bundles OpenSSL 1.0.2k: TLS 1.2 at most
        tc.tlsConfig.method = pj.PJSIP_TLSV1_2_METHOD
        tc.tlsConfig.CaListFile = os.environ["PJ_TLS_CA"]   # e.g. <data_dir>/tls/cert.pem
        tc.tlsConfig.verifyServer = True  # checks the host of the proxy URI against the cert's SAN
    tid = ep.transportCreate(TRANSPORTS[transport], tc)
    ep.libStart()

    ac = pj.AccountConfig()
    ac.idUri = f"sip:{user}@{DOMAIN}"
    ac.regConfig.registrarUri = f"sip:{DOMAIN}"
    ac.regConfig.retryIntervalSec = 0     # a failed REGISTER is reported, not retried
    # every request (REGISTER, PUBLISH, SUBSCRIBE, MESSAGE) is routed to the server's loopback port
    # while Request-URIs stay sip:x@localhost; over tls the host must match the cert (DNS:localhost)
    host = "localhost" if transport == "tls" else "127.0.0.1"
    ac.sipConfig.proxies.append(f"sip:{host}:{sip_port};transport={transport};lr")
    ac.sipConfig.transportId = tid
    ac.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", user, 0, password))
    ac.presConfig.publishEnabled = os.environ.get("PJ_PUBLISH", "1") == "1"
    ac.presConfig.publishShutdownWaitMsec = 500
    acc = Acc()
    acc.create(ac)
    buddies = {}
    emit(ev="ready")

    buf = b""
    running = True
    while running:
        r, _, _ = select.select([0], [], [], 0)
        if r:
            chunk = os.read(0, 65536)
            if not chunk:
                break                     # stdin closed: the test is gone
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                c = json.loads(line)
                try:
                    if c["cmd"] == "status":
                        acc.setOnlineStatus(presence_status(c))
                    elif c["cmd"] == "buddy":
                        bc = pj.BuddyConfig()
                        bc.uri = f"sip:{c['user']}@{DOMAIN}"
                        bc.subscribe = True
                        b = Bud()
                        b.create(acc, bc)
                        buddies[c["user"]] = b
                    elif c["cmd"] == "im":
                        p = pj.SendInstantMessageParam()
                        p.content = c["text"]
                        p.contentType = "text/plain"
                        buddies[c["user"]].sendInstantMessage(p)
                    elif c["cmd"] == "unregister":
                        acc.setRegistration(False)
                    elif c["cmd"] == "register":
                        acc.setRegistration(True)
                    elif c["cmd"] == "quit":
                        running = False
                    emit(ev="ok", cmd=c["cmd"])
                except pj.Error as e:
                    emit(ev="error", cmd=c.get("cmd"), info=e.info())
                except (KeyError, ValueError) as e:
                    emit(ev="error", cmd=c.get("cmd"), info=repr(e))
        ep.libHandleEvents(20)

    # clean shutdown: unregister + unpublish + unsubscribe, pump briefly, then destroy
    try:
        if acc.getInfo().regIsActive:
            acc.setRegistration(False)
    except pj.Error:
        pass
    end = time.monotonic() + SHUTDOWN_PUMP
    while time.monotonic() < end:
        ep.libHandleEvents(20)
    buddies.clear()
    acc.shutdown()
    del acc                               # the Python wrappers go before libDestroy
    ep.libDestroy()
    emit(ev="bye")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], *(sys.argv[5:6]))
