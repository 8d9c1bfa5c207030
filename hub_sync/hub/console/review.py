"""The review queue (谁接入谁负责): offered teacher uploads, their decisions, and the
published ones that can be withdrawn. Reviewers and bureau admins only.

    GET  /console/review                  pending offers (``?state=`` rejected, approved, withdrawn)
    GET  /console/review/<id>             one offer: metadata, uploader, school, preview, decisions
    POST /console/review/<id>/edit        change its curriculum metadata
    POST /console/review/<id>/approve     into a channel (``publish_now``: at once)
    POST /console/review/<id>/reject      with a reason
    GET  /console/published               approved resources
    POST /console/published/<id>/withdraw with a reason; the next sync removes it everywhere

A refused decision (no such channel, decided by someone else first, a withdrawn one
approved again, no reason) shows the message on the offer's page with status 4xx,
and nothing changes (``hub_sync.hub.reviews``).
"""

from __future__ import annotations

from flask import current_app, redirect, render_template, request

from hub_sync.core.errors import Problem
from hub_sync.hub.channels import Channels
from hub_sync.hub.offers import CURRICULUM, STATES, Offers
from hub_sync.hub.reviews import KINDS, Reviews
from hub_sync.hub.console.auth import console_blueprint, current_account, require_role
from hub_sync.hub.console.locale import pick

bp = console_blueprint("console_review")
REVIEWERS = ("reviewer",)  # and bureau_admin, who passes every check


def _hub():
    return current_app.extensions["hub"]


def _page(offer_id: int, error: Problem | None = None, done: str | None = None):
    reviews = Reviews(_hub())
    offer = reviews.offers.get(offer_id)
    body = render_template("county/offer.html", me=current_account(), offer=offer, channels=Channels(_hub().db).all(),
                           missing={f["sha256"] for f in reviews.missing_files(offer)}, kinds=KINDS, fields=CURRICULUM,
                           error=pick(error.zh, error.en) if error else None, done=done or request.args.get("done"))
    return body, (error.http_status if error else 200)


@bp.get("/console/review")
@require_role(*REVIEWERS)
def queue():
    """Pending offers, oldest first (or those in another state)."""
    state = request.args.get("state", "pending")
    state = state if state in STATES else "pending"
    offers = Offers(_hub().db)
    offers.collect_usb()  # offers that came on a stick since the last look
    return render_template("county/review.html", me=current_account(), offers=offers.list((state,)), state=state,
                           states=STATES)


@bp.get("/console/review/<int:offer_id>")
@require_role(*REVIEWERS)
def offer(offer_id: int):
    return _page(offer_id)


def _decide(offer_id: int, action, done: str):
    try:
        action()
    except Problem as exc:  # shown on the offer's page; nothing changed
        return _page(offer_id, error=exc)
    return redirect(f"/console/review/{offer_id}?done={done}")


@bp.post("/console/review/<int:offer_id>/edit")
@require_role(*REVIEWERS)
def edit(offer_id: int):
    changes = {k: request.form.get(k) for k in CURRICULUM if k in request.form}
    return _decide(offer_id, lambda: Reviews(_hub()).edit(offer_id, current_account().name, changes), "edited")


@bp.post("/console/review/<int:offer_id>/approve")
@require_role(*REVIEWERS)
def approve(offer_id: int):
    channel = request.form.get("channel", "")
    now = request.form.get("publish_now") == "1"
    return _decide(offer_id, lambda: Reviews(_hub()).approve(offer_id, current_account().name, channel, now),
                   "published" if now else "approved")


@bp.post("/console/review/<int:offer_id>/reject")
@require_role(*REVIEWERS)
def reject(offer_id: int):
    return _decide(offer_id, lambda: Reviews(_hub()).reject(offer_id, current_account().name, request.form.get("reason", "")),
                   "rejected")


@bp.get("/console/published")
@require_role(*REVIEWERS)
def published():
    """Approved resources, newest decision first, each with a withdraw form."""
    offers = sorted(Offers(_hub().db).list(("approved",)), key=lambda o: -(o.decided_at or 0))
    return render_template("county/published.html", me=current_account(), offers=offers, done=request.args.get("done"))


@bp.post("/console/published/<int:offer_id>/withdraw")
@require_role(*REVIEWERS)
def withdraw(offer_id: int):
    return _decide(offer_id, lambda: Reviews(_hub()).withdraw(offer_id, current_account().name, request.form.get("reason", "")),
                   "withdrawn")
