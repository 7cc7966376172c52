"""The image generator example (examples/image_generator) end to end against a real creditflow:
a user signs in, sees the balance and the cost, generates (a hold settled for the cost), fails a
generation (the hold released), is refused for lack of credits with creditflow's message, goes
to the billing page, and receives creditflow's webhooks, verified."""

from __future__ import annotations

import html
import json
import re
import time

import httpx
from api_kit import SERVER_KEY

from creditflow.client import Client
from creditflow.events.service import sign
from creditflow.worker.runner import tick


def balance_on_page(page: httpx.Response) -> str:
    return re.search(r'id="available">([^<]+)<', page.text).group(1)


def flash(page: httpx.Response) -> str:
    found = re.search(r'class="flash" role="status">([^<]*)<', page.text)
    return html.unescape(found.group(1)) if found else ""


def holds_on_page(page: httpx.Response) -> list[str]:
    """The hold of each generation listed, newest first."""
    return re.findall(r"hold <code>(hold_\w+)</code>", page.text)


def test_a_user_signs_in_generates_and_is_billed(server, image_generator):
    url, _ = image_generator
    with Client(server.url, SERVER_KEY) as cf, httpx.Client(base_url=url, follow_redirects=True) as browser:
        assert 'action="/signin"' in browser.get("/").text

        # Signing in creates the customer; signing in again finds it.
        home = browser.post("/signin", data={"name": "Ada Lovelace"})
        assert home.status_code == 200 and "Signed in as <b>Ada Lovelace</b>" in home.text
        [customer] = cf.customers.list(external_id="Ada Lovelace")["data"]
        assert customer["email"] == "ada.lovelace@example.com"
        browser.post("/signout")
        assert 'action="/signin"' in browser.get("/").text
        home = browser.post("/signin", data={"name": "Ada Lovelace"})
        assert [c["id"] for c in cf.customers.list(external_id="Ada Lovelace")["data"]] == [customer["id"]]

        # The balance comes from creditflow (Free: 100 daily credits); the cost shows before clicking.
        assert balance_on_page(home) == cf.credits.balance(customer["id"])["available"] == "100"
        assert 'Generate for <span id="cost">10</span> credits' in home.text
        assert "<td>4</td><td>40 credits</td><td>100 credits</td>" in home.text

        # Generating 2 standard images: a hold for 20, settled for 20.
        home = browser.post("/generate", data={"prompt": "a red fox", "count": "2", "size": "standard"})
        assert flash(home) == "Generated 2 images for 20 credits."
        assert balance_on_page(home) == "80"
        balance = cf.credits.balance(customer["id"])
        assert (balance["available"], balance["held"]) == ("80", "0")
        [settled_id] = holds_on_page(home)
        settled = cf.credits.get_hold(settled_id)
        assert (settled["status"], settled["amount"], settled["settled_amount"]) == ("settled", "20", "20")
        assert settled["customer"] == customer["id"] and settled["feature"] == "standard_models"
        images = re.findall(r'<img src="(/images/[^"]+\.svg)"', home.text)
        assert len(images) == 2
        image = browser.get(images[0])
        assert image.headers["content-type"].startswith("image/svg+xml") and "a red fox" in image.text

        # A simulated failure: the hold (25 for one HD image) is released, the balance unchanged.
        home = browser.post("/generate", data={"count": "1", "size": "hd", "fail": "true"})
        assert "failed" in flash(home) and "the 25 credits held for it were released" in flash(home)
        released_id = holds_on_page(home)[0]
        released = cf.credits.get_hold(released_id)
        assert (released["status"], released["amount"], released["settled_amount"]) == ("released", "25", None)
        assert balance_on_page(home) == cf.credits.balance(customer["id"])["available"] == "80"

        # 4 HD images cost 100: more than the 80 left. creditflow's message is shown; nothing is held.
        entries = cf.credits.ledger(customer["id"], limit=100)["data"]
        home = browser.post("/generate", data={"count": "4", "size": "hd"})
        assert flash(home) == "not enough credits: 100 needed, 80 available for this feature"
        assert holds_on_page(home) == [released_id, settled_id]
        assert cf.credits.ledger(customer["id"], limit=100)["data"] == entries
        assert [e["kind"] for e in entries] == ["grant", "hold", "settle", "hold", "release"]

        # Billing: a one-time creditflow link, opening the billing page with a way back here.
        billing = browser.post("/billing", follow_redirects=False)
        assert billing.status_code == 303
        link = billing.headers["location"]
        assert link.startswith(f"{server.url}/billing/session/")
        with httpx.Client(follow_redirects=True) as other_browser:
            page = other_browser.get(link)
            assert page.status_code == 200 and str(page.url).startswith(f"{server.url}/billing")
            assert f'href="{url}/"' in page.text and "Back to the app" in page.text
            assert other_browser.get(link).status_code == 404  # the link works once


def test_webhooks_from_the_worker_arrive_verified(server, image_generator):
    url, endpoint = image_generator
    with httpx.Client(base_url=url, follow_redirects=True) as browser:
        browser.post("/signin", data={"name": "grace"})
        browser.post("/generate", data={"count": "1", "size": "standard"})
        home = browser.post("/generate", data={"count": "1", "size": "standard", "fail": "true"})
        released_id, settled_id = holds_on_page(home)

        for _ in range(5):  # the worker fans events out to the endpoint, then delivers them
            tick(server.ctx)
            received = received_events(browser)
            if {"credits.hold_settled", "credits.hold_released"} <= {e["type"] for e in received.values()}:
                break
            time.sleep(0.1)
        by_type = {e["type"]: e for e in received.values()}
        assert {"customer.created", "credits.hold_placed", "credits.hold_settled",
                "credits.hold_released"} <= set(by_type)
        assert by_type["credits.hold_settled"]["data"]["hold"] == settled_id
        assert by_type["credits.hold_released"]["data"]["hold"] == released_id
        tick(server.ctx)  # nothing is delivered twice, nor shown twice
        assert received_events(browser).keys() == received.keys()

        # Deliveries not signed with the endpoint's secret are refused.
        forged = json.dumps({"id": "evt_forged", "object": "event", "type": "credits.granted",
                             "customer": None, "created_at": "2026-01-01T00:00:00Z", "data": {}}).encode()
        now = int(time.time())
        for signature in (sign("whsec_wrong", now, forged), "", "t=1,v1=00"):
            refused = browser.post("/webhooks/creditflow", content=forged,
                                   headers={"Creditflow-Signature": signature, "Content-Type": "application/json"})
            assert refused.status_code == 400, signature
        assert "evt_forged" not in received_events(browser)
        signed = browser.post("/webhooks/creditflow", content=forged,
                              headers={"Creditflow-Signature": sign(endpoint["secret"], now, forged)})
        assert signed.status_code == 200 and "evt_forged" in received_events(browser)


def received_events(browser: httpx.Client) -> dict[str, dict]:
    """The events the example's page lists, by id: {type, data}."""
    page = browser.get("/webhooks").text
    rows = re.findall(r"<tr><td><code>(evt_\w+)</code>.*?</td><td>([\w.]+)</td>.*?<pre>(.*?)</pre>", page, re.S)
    return {event_id: {"type": type_, "data": json.loads(html.unescape(data))} for event_id, type_, data in rows}


def test_the_flow_in_a_browser(server, image_generator, chromium):
    """The same pages in Chromium: the cost follows the options before clicking, and Billing goes
    to creditflow's page and back."""
    url, _ = image_generator
    page = chromium.new_page()
    try:
        page.goto(url)
        page.fill("input[name=name]", "linus")
        page.click("button:has-text('Sign in')")
        assert page.text_content("#available") == "100"
        assert page.text_content("#cost") == "10"
        page.select_option("select[name=count]", "3")
        page.select_option("select[name=size]", "hd")
        assert page.text_content("#cost") == "75"
        page.click("#generate button")
        assert page.text_content(".flash") == "Generated 3 images for 75 credits."
        assert page.text_content("#available") == "25"
        assert page.locator(".images img").count() == 3

        page.click("button:has-text('Billing')")
        page.wait_for_url(f"{server.url}/billing**")
        page.click("text=Back to the app")
        page.wait_for_url(f"{url}/")
        assert page.text_content("#available") == "25"
    finally:
        page.close()
