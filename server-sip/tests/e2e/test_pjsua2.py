"""pjsua2 (PJSIP, PyPI ``pjsua2-python``) as a second real SIP client beside sipp: softphones
that register, publish, watch each other as buddies and exchange MESSAGEs, checked by what
pjsua2 itself shows (its buddy ``presStatus``: status, activity, note; its IM callbacks).

Each user is one agent process (``pjagent.py``, driven through ``pjsua.py``): pjsua2's Endpoint
is a per-process singleton. Agents' pjsua logs (every SIP message) are in the test's tmp dir.
Every wait is bounded (``pjsua.WAIT`` per event, ``QUIT_TIMEOUT`` then a kill at teardown).
"""

from __future__ import annotations

from pjsua import PjAgent, PjAgents

ALICE_URI, BOB_URI = "sip:alice@localhost", "sip:bob@localhost"


def buddy(uri: str, status: str, **fields):
    """A predicate: a buddy-state event about ``uri`` showing ``status`` and the given fields."""
    def pred(ev: dict) -> bool:
        return (ev.get("ev") == "buddy" and ev.get("uri") == uri and ev.get("status") == status
                and all(ev.get(k) == v for k, v in fields.items()))
    return pred


def buddies(pj_agents: PjAgents) -> tuple[PjAgent, PjAgent]:
    """alice and bob registered, published online and each the other's buddy, seen online."""
    alice, bob = pj_agents("alice"), pj_agents("bob")
    for agent in (alice, bob):
        agent.do(cmd="status", state="online")
    alice.do(cmd="buddy", user="bob")
    bob.do(cmd="buddy", user="alice")
    alice.expect(buddy(BOB_URI, "online"))
    bob.expect(buddy(ALICE_URI, "online"))
    return alice, bob


def test_register_publish_and_see_each_other_online(pj_agents):
    alice, bob = buddies(pj_agents)
    # both registered with 200 (pj_agents waits for it) and both see the other online
    assert alice.events and bob.events
