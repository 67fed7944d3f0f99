"""Calendar presence (``[calendar] kind = "caldav"``) against a Radicale the test starts: an event PUT into a
user's CalDAV calendar shows their XMPP contacts "In a meeting" (``<show>away</show>``, the composition the
trusted SIP peer's calendar state gives) while it lasts and the status returns when it ends; an all-day
out-of-office event shows ``xa`` "Out of office" until removed; a calendar alone never makes an offline user
available; a weekly meeting written in local time is matched and expanded by the server and ends on time (shown
as do-not-disturb for a user who asked for that in meetings);
Radicale going down mid-meeting disturbs nothing, the meeting still ends on time, and the service
account's password never reaches the log, even at debug."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

import pytest

from conftest import Server, free_port, write_config
from services import Radicale
from xmpp import DOMAIN, WAIT, Client, clients, connect, make_mutual, run, wait

NS_SETTINGS = "urn:presenced:presence-settings:0"  # the per-user presence settings (server-sip/tests/e2e/test_settings.py)
SERVICE, SERVICE_PASSWORD = "presenced-svc", "svc-Pa55-never-logged"
POLL = "1s"
MEETING_SECONDS = 18


def ical_time(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def meeting(summary: str, seconds: int) -> tuple[str, dt.datetime]:
    """A VEVENT that began a moment ago and ends ``seconds`` from now; returns it and its end."""
    now = dt.datetime.now(dt.timezone.utc)
    end = now + dt.timedelta(seconds=seconds)
    uid = uuid.uuid4().hex
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//presenced e2e//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:{ical_time(now)}\r\nDTSTART:{ical_time(now - dt.timedelta(seconds=5))}\r\n"
        f"DTEND:{ical_time(end)}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        end,
    )


def out_of_office_today() -> str:
    """An all-day event for today (UTC) marked the way Outlook and Exchange mark it."""
    today = dt.datetime.now(dt.timezone.utc).date()
    day = lambda d: d.strftime("%Y%m%d")  # noqa: E731
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//presenced e2e//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uuid.uuid4().hex}\r\nDTSTAMP:{ical_time(dt.datetime.now(dt.timezone.utc))}\r\n"
        f"DTSTART;VALUE=DATE:{day(today)}\r\nDTEND;VALUE=DATE:{day(today + dt.timedelta(days=1))}\r\n"
        "SUMMARY:Holiday\r\nTRANSP:TRANSPARENT\r\nX-MICROSOFT-CDO-BUSYSTATUS:OOF\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def weekly_standup_in_kolkata(seconds: int) -> tuple[str, dt.datetime]:
    """A weekly event in local time with a TZID (no UTC anywhere), whose first instance was a week ago and whose
    instance of today began a moment ago and ends ``seconds`` from now; returns it and today's end."""
    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))  # Asia/Kolkata has no daylight saving time
    now = dt.datetime.now(dt.timezone.utc)
    local = lambda t: t.astimezone(ist).strftime("%Y%m%dT%H%M%S")  # noqa: E731
    first = now - dt.timedelta(days=7)
    end = now + dt.timedelta(seconds=seconds)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//presenced e2e//EN\r\n"
        "BEGIN:VTIMEZONE\r\nTZID:Asia/Kolkata\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
        "TZOFFSETFROM:+0530\r\nTZOFFSETTO:+0530\r\nTZNAME:IST\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
        f"BEGIN:VEVENT\r\nUID:{uuid.uuid4().hex}\r\nDTSTAMP:{ical_time(now)}\r\n"
        f"DTSTART;TZID=Asia/Kolkata:{local(first - dt.timedelta(seconds=5))}\r\n"
        f"DTEND;TZID=Asia/Kolkata:{local(first + dt.timedelta(seconds=seconds))}\r\n"
        "RRULE:FREQ=WEEKLY\r\nSUMMARY:Standup\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        end,
    )


@pytest.fixture
def dav():
    with Radicale({SERVICE: SERVICE_PASSWORD}) as r:
        yield r


def serve(binary: Path, tmp_path: Path, dav: Radicale, *, log_level: str = "info") -> Server:
    srv = Server(binary=binary, root=tmp_path, port=free_port())
    write_config(
        srv.config, srv.data_dir, srv.port, free_port(udp_too=True), http_port=srv.http_port,
        tables=(
            "[calendar]\n"
            'kind = "caldav"\n'
            f'url = "{dav.base}/{{user}}/calendar/"\n'
            f'username = "{SERVICE}"\n'
            f'password = "{SERVICE_PASSWORD}"\n'
            f'poll_interval = "{POLL}"\n'
            'timeout = "2s"\n'
            "\n[log]\n"
            f'level = "{log_level}"\n'
        ),
    )
    # The config's level, not the environment's, decides what this test's server logs.
    srv.env["RUST_LOG"] = log_level
    for local in ("alice", "bob", "carol"):
        srv.add_user(local, f"{local}-secret-1")
    return srv


async def presence_where(client: Client, bare: str, what: str, pred: Callable, timeout: float = WAIT):
    """The next presence from ``bare`` that satisfies ``pred``; others are skipped."""

    async def get():
        while True:
            pres = await client.presences.get()
            if pres["from"].bare == bare and pred(pres):
                return pres

    return await wait(get(), f"{what} at {client.jid}", timeout)


def in_a_meeting(pres) -> bool:
    return pres["type"] == "away" and pres["status"] == "In a meeting"


def plainly_available(pres) -> bool:
    return pres["type"] == "available" and pres["show"] == "" and pres["status"] != "In a meeting"


def until(end: dt.datetime) -> float:
    """Seconds of waiting that cover ``end`` plus one ordinary wait."""
    return max(0.0, (end - dt.datetime.now(dt.timezone.utc)).total_seconds()) + WAIT


def test_a_meeting_shows_to_contacts_and_ends_and_never_makes_an_offline_user_available(
    binary: Path, tmp_path: Path, dav: Radicale
) -> None:
    alice_cal = dav.make_calendar("alice", as_user=SERVICE)
    carol_cal = dav.make_calendar("carol", as_user=SERVICE)
    srv = serve(binary, tmp_path, dav)
    srv.start()
    try:

        async def scenario() -> None:
            async with clients(connect(srv, "alice"), connect(srv, "bob"), connect(srv, "carol")) as (
                alice, bob, carol,
            ):
                await make_mutual(alice, bob)
                await make_mutual(carol, bob)
                # Carol signs off; bob hears it.
                await carol.disconnect()
                await presence_where(bob, f"carol@{DOMAIN}", "carol's unavailable presence",
                                     lambda p: p["type"] == "unavailable")
                # Nothing booked: alice is plainly available to bob.
                alice.xmpp.send_presence(pstatus="at my desk")
                await presence_where(bob, f"alice@{DOMAIN}", "alice available", plainly_available)

                event, end = meeting("Design review", MEETING_SECONDS)
                dav.put_event(alice_cal, "review", event, as_user=SERVICE)
                dav.put_event(carol_cal, "review", meeting("Design review", MEETING_SECONDS)[0], as_user=SERVICE)
                pres = await presence_where(bob, f"alice@{DOMAIN}", "alice in a meeting", in_a_meeting)
                assert pres["status"] == "In a meeting"
                # Polls go on (each reads carol's calendar too); then a barrier: nothing from carol reached bob.
                await asyncio.sleep(2.5)
                await bob.ping_server()
                while not bob.presences.empty():
                    p = bob.presences.get_nowait()
                    assert p["from"].bare != f"carol@{DOMAIN}" or p["type"] == "unavailable", (
                        f"a calendar alone made offline carol visible: {p}"
                    )

                # Carol signs in during her meeting: at once in it, the calendar state was the engine's already.
                async with clients(connect(srv, "carol", "again")) as (carol,):
                    await presence_where(bob, f"carol@{DOMAIN}", "carol in a meeting", in_a_meeting)

                # The event ends: alice's own presence is back.
                back = await presence_where(bob, f"alice@{DOMAIN}", "alice back after the meeting",
                                            plainly_available, timeout=until(end))
                assert back["status"] == "at my desk"
                assert dt.datetime.now(dt.timezone.utc) >= end - dt.timedelta(seconds=1), (
                    "the meeting state cleared before the event ended"
                )

        run(scenario, timeout=120)
    finally:
        srv.stop()


def test_an_all_day_out_of_office_event_shows_out_of_office_until_removed(
    binary: Path, tmp_path: Path, dav: Radicale
) -> None:
    cal = dav.make_calendar("alice", as_user=SERVICE)
    srv = serve(binary, tmp_path, dav)
    srv.start()
    try:

        async def scenario() -> None:
            async with clients(connect(srv, "alice"), connect(srv, "bob")) as (alice, bob):
                await make_mutual(alice, bob)
                await presence_where(bob, f"alice@{DOMAIN}", "alice available", plainly_available)
                dav.put_event(cal, "holiday", out_of_office_today(), as_user=SERVICE)
                pres = await presence_where(bob, f"alice@{DOMAIN}", "alice out of office",
                                            lambda p: p["type"] == "xa")
                assert pres["status"] == "Out of office"
                status, text = dav.request("DELETE", f"{cal}holiday.ics", user=SERVICE)
                assert status in (200, 204), f"DELETE: {status} {text}"
                await presence_where(bob, f"alice@{DOMAIN}", "alice back", plainly_available)

        run(scenario)
    finally:
        srv.stop()


def test_radicale_stopping_mid_meeting_disturbs_nothing_and_the_meeting_still_ends(
    binary: Path, tmp_path: Path, dav: Radicale
) -> None:
    cal = dav.make_calendar("alice", as_user=SERVICE)
    srv = serve(binary, tmp_path, dav, log_level="debug")
    srv.start()
    try:

        async def scenario() -> None:
            async with clients(connect(srv, "alice"), connect(srv, "bob")) as (alice, bob):
                await make_mutual(alice, bob)
                await presence_where(bob, f"alice@{DOMAIN}", "alice available", plainly_available)
                event, end = meeting("Budget", MEETING_SECONDS)
                dav.put_event(cal, "budget", event, as_user=SERVICE)
                await presence_where(bob, f"alice@{DOMAIN}", "alice in a meeting", in_a_meeting)

                dav.stop()
                # A few failed polls later, the server still serves: a message, and a new sign-in.
                await asyncio.sleep(3)
                bob.send_message(f"alice@{DOMAIN}", "still there?")
                msg = await alice.next_message("bob's message while the calendar server is down")
                assert msg["body"] == "still there?"
                async with clients(connect(srv, "carol")) as (carol,):
                    await carol.ping_server()
                # Alice stays in her meeting (no flip to free on an outage) ...
                assert not any(
                    p["from"].bare == f"alice@{DOMAIN}" and plainly_available(p)
                    for p in list(bob.presences._queue)  # noqa: SLF001 (a peek, nothing taken)
                ), "the outage cleared alice's meeting before it ended"
                # ... and it ends on time with the calendar server still down: its end was read.
                await presence_where(bob, f"alice@{DOMAIN}", "alice back with Radicale down",
                                     plainly_available, timeout=until(end))
                assert dt.datetime.now(dt.timezone.utc) >= end - dt.timedelta(seconds=1)

        run(scenario, timeout=120)
    finally:
        srv.stop()
    log = srv.stderr_path.read_text(errors="replace")
    assert "calendar reads failed" in log and "calendar reads succeed again" not in log, "the outage was not logged"
    token = base64.b64encode(f"{SERVICE}:{SERVICE_PASSWORD}".encode()).decode()
    assert SERVICE_PASSWORD not in log and token not in log, "the service account's password was logged"


def test_a_weekly_meeting_in_local_time_is_expanded_by_the_server_and_ends_on_time_dnd_as_the_user_asked(
    binary: Path, tmp_path: Path, dav: Radicale
) -> None:
    cal = dav.make_calendar("alice", as_user=SERVICE)
    srv = serve(binary, tmp_path, dav)
    srv.start()
    try:

        async def scenario() -> None:
            async with clients(connect(srv, "alice"), connect(srv, "bob")) as (alice, bob):
                await make_mutual(alice, bob)
                await presence_where(bob, f"alice@{DOMAIN}", "alice available", plainly_available)
                # Alice asked for do-not-disturb in meetings: the calendar's meeting honours it.
                ask = ET.Element(f"{{{NS_SETTINGS}}}settings", {"dnd-in-meeting": "true"})
                result = await wait(alice.xmpp.make_iq_set(ask).send(timeout=WAIT), "dnd-in-meeting set")
                assert result["type"] == "result", result
                event, end = weekly_standup_in_kolkata(MEETING_SECONDS)
                dav.put_event(cal, "standup", event, as_user=SERVICE)
                await presence_where(bob, f"alice@{DOMAIN}", "alice in today's standup, dnd",
                                     lambda p: p["type"] == "dnd" and p["status"] == "In a meeting")
                await presence_where(bob, f"alice@{DOMAIN}", "alice back after the standup",
                                     plainly_available, timeout=until(end))
                assert dt.datetime.now(dt.timezone.utc) >= end - dt.timedelta(seconds=1)

        run(scenario, timeout=120)
    finally:
        srv.stop()
