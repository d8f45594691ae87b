"""The chat demo in real browsers (headless chromium): see conftest.py for the set-up.

Each test is a scenario; screenshots of the states it passes through go to
tests/browser/artifacts/. The chat servers here keep the last 3 messages per room for newcomers.
"""

from __future__ import annotations

import time

from chat_support import ChatServer, CuttableProxy, Pages, screenshot, with_ws
from playwright.sync_api import Page, expect

SENT = "[data-testid=msg][data-state=sent] [data-testid=msg-text]"


def join(page: Page, name: str) -> None:
    """Log in and wait until connected and in #general (the first room)."""
    page.get_by_test_id("username").locator("input").fill(name)
    page.get_by_test_id("join").click()
    expect(page.get_by_test_id("status")).to_have_attribute("data-status", "connected")
    expect(page.get_by_test_id("room-general")).to_have_attribute("data-joined", "true")
    expect(page.get_by_test_id("active-room")).to_contain_text("general")


def send(page: Page, text: str, *, confirmed: bool = True) -> None:
    box = page.get_by_test_id("composer").locator("input")
    box.fill(text)
    box.press("Enter")
    expect(box).to_have_value("")
    if confirmed:  # echoed by the server (not just queued)
        expect(page.locator(SENT, has_text=text)).to_have_count(1)


def sent_texts(page: Page) -> list[str]:
    """The confirmed messages of the active room, top to bottom."""
    texts: list[str] = page.locator(SENT).all_inner_texts()
    return texts


def all_messages(page: Page) -> list[tuple[str, str]]:
    """(state, text) of every message bubble of the active room, pending ones included."""
    rows: list[tuple[str, str]] = page.locator("[data-testid=msg]").evaluate_all(
        "els => els.map(e => [e.dataset.state,"
        " e.querySelector('[data-testid=msg-text]').textContent])")
    return [(state, text) for state, text in rows]


def open_room(page: Page, name: str) -> None:
    page.get_by_test_id(f"room-{name}").click()
    expect(page.get_by_test_id("active-room")).to_contain_text(name)
    expect(page.get_by_test_id(f"room-{name}")).to_have_attribute("data-joined", "true")


# ----------------------------------------------------------------------------- tests


def test_two_users_chat_with_typing_indicator(chat_server: ChatServer, pages: Pages) -> None:
    alice = pages.open(chat_server.url)
    expect(alice.get_by_test_id("join")).to_be_disabled()
    # A name that is empty once cleaned (zero-width spaces) is refused by the server's hook.
    alice.get_by_test_id("username").locator("input").fill("\u200b\u200b")
    alice.get_by_test_id("join").click()
    expect(alice.get_by_test_id("login-error")).to_contain_text("choose a username")
    alice.get_by_test_id("username").locator("input").fill("Alice")
    screenshot(alice, "01-login")
    alice.get_by_test_id("join").click()
    expect(alice.get_by_test_id("status")).to_have_attribute("data-status", "connected")
    expect(alice.get_by_test_id("status-text")).to_have_text("Connected")
    bob = pages.open(chat_server.url)
    join(bob, "Bob")

    # Both see each other online in #general.
    for page in (alice, bob):
        users = page.get_by_test_id("user-item")
        expect(users).to_have_count(2)
        expect(users.filter(has_text="Alice")).to_have_attribute("data-online", "true")
        expect(users.filter(has_text="Bob")).to_have_attribute("data-online", "true")
    expect(alice.get_by_test_id("notice").filter(has_text="Bob joined #general")).to_be_visible()

    # Typing shows on the other screen and clears when the text is deleted...
    alice.get_by_test_id("composer").locator("input").press_sequentially("Hel", delay=30)
    expect(bob.get_by_test_id("typing")).to_have_text("Alice is typing…")
    expect(alice.get_by_test_id("typing")).to_have_text("")  # never about yourself
    screenshot(bob, "02-typing-indicator")
    alice.get_by_test_id("composer").locator("input").fill("")
    expect(bob.get_by_test_id("typing")).to_have_text("")

    # ...and when the message is sent.
    alice.get_by_test_id("composer").locator("input").press_sequentially("Hello Bob!", delay=10)
    expect(bob.get_by_test_id("typing")).to_have_text("Alice is typing…")
    alice.get_by_test_id("composer").locator("input").press("Enter")
    expect(bob.locator(SENT, has_text="Hello Bob!")).to_be_visible()
    expect(bob.get_by_test_id("typing")).to_have_text("")

    send(bob, "Hi Alice — ça va? Ünïcödé ok")
    send(alice, "Great: this message went through SigmaSockets.")
    expected = ["Hello Bob!", "Hi Alice — ça va? Ünïcödé ok",
                "Great: this message went through SigmaSockets."]
    for page in (alice, bob):
        expect(page.locator(SENT)).to_have_count(3)
        assert sent_texts(page) == expected
    # Own messages are on the right, labelled "You".
    mine = alice.locator("[data-testid=msg].mine", has_text="Hello Bob!")
    expect(mine).to_contain_text("You")
    screenshot(alice, "03-two-users-chatting")


def test_newcomer_sees_history_of_last_n(chat_server: ChatServer, pages: Pages) -> None:
    alice = pages.open(chat_server.url)
    join(alice, "Alice")
    for i in range(1, 6):
        send(alice, f"message {i}")
    carol = pages.open(chat_server.url)
    join(carol, "Carol")
    # The server keeps the last 3 (--history-size 3): Carol gets exactly those, in order.
    expect(carol.locator(SENT)).to_have_count(3)
    assert sent_texts(carol) == ["message 3", "message 4", "message 5"]
    assert sent_texts(alice) == [f"message {i}" for i in range(1, 6)]
    expect(alice.get_by_test_id("notice").filter(has_text="Carol joined")).to_be_visible()
    send(carol, "Hi, I just got here")
    expect(alice.locator(SENT).last).to_have_text("Hi, I just got here")
    screenshot(carol, "04-newcomer-history")
    # Closing the tab ends the session at once: a leave notice, not a wait for the timeout.
    carol.close()
    expect(alice.get_by_test_id("notice").filter(has_text="Carol left #general")).to_be_visible()
    expect(alice.get_by_test_id("user-item")).to_have_count(1)


def test_rooms_keep_conversations_apart(chat_server: ChatServer, pages: Pages) -> None:
    alice = pages.open(chat_server.url)
    join(alice, "Alice")
    bob = pages.open(chat_server.url)
    join(bob, "Bob")

    open_room(bob, "random")
    send(bob, "only in random")
    send(alice, "only in general")
    expect(bob.get_by_test_id("room-general").get_by_test_id("unread")).to_have_text("1")
    assert sent_texts(bob) == ["only in random"]
    assert sent_texts(alice) == ["only in general"]

    open_room(bob, "general")
    assert sent_texts(bob) == ["only in general"]
    expect(bob.get_by_test_id("room-general").get_by_test_id("unread")).to_have_count(0)

    # A room made on the spot: the other sees it in the list and can join it.
    alice.get_by_test_id("new-room").locator("input").fill("dev-Talk")
    expect(alice.get_by_test_id("new-room").locator("input")).to_have_value("dev-talk")
    alice.get_by_test_id("new-room-add").click()
    expect(alice.get_by_test_id("active-room")).to_contain_text("dev-talk")
    send(alice, "only in dev-talk")
    expect(bob.get_by_test_id("room-dev-talk")).to_contain_text("1 member")
    open_room(bob, "dev-talk")
    expect(bob.locator(SENT)).to_have_count(1)
    assert sent_texts(bob) == ["only in dev-talk"]  # its history, nothing from elsewhere
    expect(bob.get_by_test_id("room-general")).to_contain_text("2 members")
    screenshot(bob, "05-rooms")

    # Leaving: the others in the room see it, the room list counts it.
    open_room(alice, "general")
    bob.get_by_test_id("leave-general").click()
    expect(bob.get_by_test_id("room-general")).to_have_attribute("data-joined", "false")
    expect(alice.get_by_test_id("notice").filter(has_text="Bob left #general")).to_be_visible()
    expect(alice.get_by_test_id("user-item")).to_have_count(1)
    expect(alice.get_by_test_id("room-general")).to_contain_text("1 member")
    assert sent_texts(alice) == ["only in general"]


def test_connection_drop_resumes_session_with_replay(chat_server: ChatServer,
                                                     pages: Pages) -> None:
    """Bob's network goes away (a proxy drops and refuses his connections) while the server
    runs on. His session survives: on reconnect it is resumed (no reset), the hub replays what
    Alice sent meanwhile and Bob's queued messages are delivered — each exactly once, in order."""
    proxy = CuttableProxy(chat_server.port)
    try:
        alice = pages.open(chat_server.url)
        join(alice, "Alice")
        bob = pages.open(with_ws(chat_server.url, proxy.ws_url()))
        join(bob, "Bob")
        send(alice, "before the drop")
        expect(bob.locator(SENT, has_text="before the drop")).to_be_visible()

        with pages.server_down():
            proxy.cut()
            expect(bob.get_by_test_id("status")).to_have_attribute("data-status", "reconnecting")
            # Alice sees Bob as reconnecting (his session waits for him).
            expect(alice.get_by_test_id("user-item").filter(has_text="Bob")).to_have_attribute(
                "data-online", "false")
            send(alice, "while Bob is away 1")
            send(bob, "Bob queued this", confirmed=False)
            send(alice, "while Bob is away 2")
            expect(bob.locator("[data-testid=msg][data-state=pending]")).to_have_count(1)
            assert "while Bob is away 1" not in sent_texts(bob)
            proxy.restore()
            expect(bob.get_by_test_id("status")).to_have_attribute("data-status", "connected",
                                                                  timeout=20_000)
        expected = ["before the drop", "while Bob is away 1", "while Bob is away 2",
                    "Bob queued this"]
        for page in (alice, bob):
            expect(page.locator(SENT)).to_have_count(4)
            expect(page.locator("[data-testid=msg][data-state=pending]")).to_have_count(0)
        assert sent_texts(alice) == expected
        assert sent_texts(bob) == expected
        expect(alice.get_by_test_id("user-item").filter(has_text="Bob")).to_have_attribute(
            "data-online", "true")
        expect(bob.get_by_test_id("snackbar")).to_have_count(0)  # resumed: no session reset
    finally:
        # The pages first: a page still open when the proxy's listener closes would
        # reconnect to it, and the browser logs the refusal as a console error.
        pages.close()
        proxy.close()


def test_server_killed_and_restarted_every_message_once_in_order(
        chat_server: ChatServer, pages: Pages) -> None:
    """The server is SIGKILLed (it keeps nothing on disk) and restarted empty while both users
    go on typing and sending. What must hold, and why it is meaningful:

    - messages confirmed before the kill stay on both screens, in their order, once;
    - messages sent while the server is down are shown as queued, then delivered by the client
      to the *new* server after its session is reset (retransmission of everything the old
      server never acknowledged), and each appears exactly once on both screens: never lost,
      never doubled (a message the old server published but had not yet acknowledged is sent
      again and must be recognised by its id);
    - both screens show the same sequence (the new server's order), each sender's messages
      in the order they were typed, and nothing is left pending;
    - chatting goes on normally afterwards.
    """
    alice = pages.open(chat_server.url)
    join(alice, "Alice")
    bob = pages.open(chat_server.url)
    join(bob, "Bob")
    before = ["a1 before", "b1 before", "a2 before", "b2 before"]
    for text in before:
        sender, receiver = (alice, bob) if text.startswith("a") else (bob, alice)
        send(sender, text)
        expect(receiver.locator(SENT, has_text=text)).to_be_visible()

    with pages.server_down():
        chat_server.kill()
        for page in (alice, bob):
            expect(page.get_by_test_id("status")).to_have_attribute("data-status", "reconnecting")
        # Both keep typing and sending while the server is gone.
        outage = ["a3 while down", "b3 while down", "a4 while down", "b4 while down"]
        for text in outage:
            send(alice if text.startswith("a") else bob, text, confirmed=False)
        alice.get_by_test_id("composer").locator("input").press_sequentially("still typ", delay=20)
        for page, mine in ((alice, ["a3 while down", "a4 while down"]),
                           (bob, ["b3 while down", "b4 while down"])):
            expect(page.locator("[data-testid=msg][data-state=pending]")).to_have_count(2)
            assert [t for s, t in all_messages(page) if s == "pending"] == mine
            expect(page.get_by_test_id("queued")).to_have_text("2 queued")
            expect(page.get_by_test_id("status-text")).to_contain_text("Reconnecting · attempt")
        screenshot(alice, "06-server-down-reconnecting")
        time.sleep(0.3)
        chat_server.start()
        for page in (alice, bob):
            expect(page.get_by_test_id("status")).to_have_attribute("data-status", "connected",
                                                                    timeout=20_000)
            expect(page.locator("[data-testid=msg][data-state=pending]")).to_have_count(0)
    alice.get_by_test_id("composer").locator("input").fill("")

    everything = before + outage
    for page in (alice, bob):
        expect(page.locator(SENT)).to_have_count(len(everything))
    screens = [sent_texts(alice), sent_texts(bob)]
    for texts in screens:
        assert sorted(texts) == sorted(everything), texts  # each exactly once
        assert texts[:4] == before  # the old server's order, untouched
        for who in "ab":  # each sender's messages in the order typed
            assert [t for t in texts if t[0] == who] == [t for t in everything if t[0] == who]
    assert screens[0] == screens[1]  # one order for everyone
    assert all(state == "sent" for state, _ in all_messages(alice) + all_messages(bob))
    expect(alice.get_by_test_id("snackbar")).to_contain_text("The server restarted")

    send(bob, "b5 after")
    expect(alice.locator(SENT).last).to_have_text("b5 after")
    # The restart notice sits in the page's flow, not over the timeline: the newest message
    # stays fully visible above it.
    banner = alice.get_by_test_id("snackbar")
    expect(banner).to_be_visible()
    newest = alice.locator(SENT).last.bounding_box()
    notice = banner.bounding_box()
    timeline = alice.get_by_test_id("timeline").bounding_box()
    assert newest is not None
    assert notice is not None
    assert timeline is not None
    assert newest["y"] + newest["height"] <= notice["y"], (newest, notice)
    assert newest["y"] + newest["height"] <= timeline["y"] + timeline["height"] + 1
    for page in (alice, bob):
        expect(page.get_by_test_id("user-item")).to_have_count(2)
    screenshot(bob, "07-after-restart-each-message-once")
    assert pages.tolerated, "expected the browser to log failed reconnect attempts"


def test_phone_sized_screen(chat_server: ChatServer, pages: Pages) -> None:
    phone = pages.open(chat_server.url, width=390, height=844, mobile=True)
    join(phone, "Pat")
    other = pages.open(chat_server.url)
    join(other, "Quinn")
    send(other, "Hello from a laptop")
    send(phone, "Hello from a phone, with a long line that must wrap nicely on a narrow screen")
    expect(phone.locator(SENT)).to_have_count(2)
    # The drawers are closed; nothing overflows sideways.
    expect(phone.get_by_test_id("rooms-drawer")).not_to_be_in_viewport()
    overflow = phone.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    composer_box = phone.get_by_test_id("composer").bounding_box()
    assert composer_box is not None
    assert composer_box["y"] + composer_box["height"] <= 844
    screenshot(phone, "08-phone-chat")

    phone.get_by_test_id("rooms-toggle").click()
    expect(phone.get_by_test_id("rooms-drawer")).to_be_in_viewport()
    screenshot(phone, "09-phone-rooms")
    phone.get_by_test_id("room-random").click()
    expect(phone.get_by_test_id("active-room")).to_contain_text("random")
    expect(phone.get_by_test_id("rooms-drawer")).not_to_be_in_viewport()
    send(phone, "random from a phone")
    assert sent_texts(phone) == ["random from a phone"]


def test_room_left_while_offline_stays_left(chat_server: ChatServer, pages: Pages) -> None:
    """Alice leaves #random while her network is down. After it comes back the room stays left
    (on the server too: Bob sees her gone), nothing from it appears on her screen, and #general,
    which she kept, resumed with nothing lost."""
    proxy = CuttableProxy(chat_server.port)
    try:
        bob = pages.open(chat_server.url)
        join(bob, "Bob")
        open_room(bob, "random")
        alice = pages.open(with_ws(chat_server.url, proxy.ws_url()))
        join(alice, "Alice")
        open_room(alice, "random")
        expect(bob.get_by_test_id("room-random")).to_contain_text("2 members")
        send(bob, "random before")
        expect(alice.locator(SENT, has_text="random before")).to_be_visible()
        open_room(alice, "general")

        with pages.server_down():
            proxy.cut()
            expect(alice.get_by_test_id("status")).to_have_attribute("data-status",
                                                                    "reconnecting")
            alice.get_by_test_id("leave-random").click()
            expect(alice.get_by_test_id("room-random")).to_have_attribute("data-joined", "false")
            send(bob, "random while Alice is away")
            open_room(bob, "general")
            send(bob, "general while Alice is away")
            proxy.restore()
            expect(alice.get_by_test_id("status")).to_have_attribute("data-status", "connected",
                                                                    timeout=20_000)
        # #general resumed: what Bob said meanwhile arrived, once.
        expect(alice.locator(SENT, has_text="general while Alice is away")).to_have_count(1)
        assert sent_texts(alice) == ["general while Alice is away"]
        # #random stays left, on the server too.
        expect(bob.get_by_test_id("room-random")).to_contain_text("1 member", timeout=10_000)
        expect(alice.get_by_test_id("room-random")).to_have_attribute("data-joined", "false")
        open_room(bob, "random")
        send(bob, "random after")
        open_room(bob, "general")
        send(bob, "general after")
        expect(alice.locator(SENT, has_text="general after")).to_be_visible()
        expect(alice.get_by_test_id("room-random").get_by_test_id("unread")).to_have_count(0)
        assert "random" not in alice.get_by_test_id("timeline").inner_text()
        expect(alice.get_by_test_id("room-random")).to_have_attribute("data-joined", "false")
        screenshot(alice, "08-room-left-offline-stays-left")
    finally:
        # The pages first: a page still open when the proxy's listener closes would
        # reconnect to it, and the browser logs the refusal as a console error.
        pages.close()
        proxy.close()


def test_limits_are_said_where_the_user_types(chat_server: ChatServer, pages: Pages) -> None:
    """A 200-character name and a 10,000-character paste are not cut silently: the field keeps
    the text and says the limit (24, 2,000 characters), and nothing is sent until it fits."""
    alice = pages.open(chat_server.url)
    name = alice.get_by_test_id("username").locator("input")
    name.fill("N" * 200)
    expect(name).to_have_value("N" * 200)
    expect(alice.get_by_test_id("username")).to_contain_text("At most 24 characters")
    expect(alice.get_by_test_id("join")).to_be_disabled()
    join(alice, "Alice")

    box = alice.get_by_test_id("composer").locator("input")
    box.fill("x" * 10_000)
    expect(box).to_have_value("x" * 10_000)
    expect(alice.get_by_test_id("composer")).to_contain_text(
        "Too long: 10,000 of at most 2,000 characters")
    expect(alice.get_by_test_id("send")).to_be_disabled()
    box.press("Enter")
    expect(box).to_have_value("x" * 10_000)  # kept for the user to shorten
    expect(alice.locator("[data-testid=msg]")).to_have_count(0)
    screenshot(alice, "09-message-too-long")
    box.fill("y" * 1_900)
    expect(alice.get_by_test_id("composer")).to_contain_text("1,900 / 2,000 characters")
    box.press("Enter")
    expect(alice.locator(SENT)).to_have_count(1)
    expect(box).to_have_value("")
    expect(alice.get_by_test_id("composer")).not_to_contain_text("characters")


def test_page_taken_offline_is_noticed_at_once(chat_server: ChatServer, pages: Pages) -> None:
    """The browser goes offline (Playwright's network emulation fires `offline`): within the
    client's 3 s probe, not the 70 s heartbeat timeout, the page stops saying "Connected" and
    queues what the user sends; back online it reconnects at once (no backoff wait), resumes,
    and every message arrives once."""
    alice = pages.open(chat_server.url)
    join(alice, "Alice")
    bob = pages.open(chat_server.url)
    join(bob, "Bob")
    with pages.server_down():
        alice.context.set_offline(True)
        went = time.monotonic()
        expect(alice.get_by_test_id("status")).not_to_have_attribute(
            "data-status", "connected", timeout=8_000)
        assert time.monotonic() - went < 8
        send(alice, "typed while offline", confirmed=False)
        expect(alice.locator("[data-testid=msg][data-state=pending]")).to_have_count(1)
        send(bob, "said while Alice was offline")
        time.sleep(2)  # let the backoff grow past what "at once" allows
        alice.context.set_offline(False)
        back = time.monotonic()
        expect(alice.get_by_test_id("status")).to_have_attribute("data-status", "connected",
                                                                timeout=5_000)
        assert time.monotonic() - back < 5
    expected = ["said while Alice was offline", "typed while offline"]
    for page in (alice, bob):
        expect(page.locator(SENT)).to_have_count(2)
        assert sorted(sent_texts(page)) == sorted(expected)
    expect(alice.get_by_test_id("snackbar")).to_have_count(0)  # resumed, not reset
