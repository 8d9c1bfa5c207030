"""Review decisions on offered teacher uploads: approve into a channel, reject with a
reason, withdraw a published one with a reason. Each is one transaction with its
audit entry and the ``share_status`` message that tells the teacher's school.

Two reviewers deciding the same offer at once: each decision is a conditional
``UPDATE ... WHERE state = <the state it expects>`` inside ``BEGIN IMMEDIATE``;
the second finds the row already moved on (rowcount 0) and gets ``DecidedError``
saying who decided first, with nothing changed. An approved resource goes into the
channel as ``c-<offer id>`` (never the appliance's own id: the school that made
it keeps its own copy, which a withdrawal must not touch). It is published at the
next ``hub publish``, or at once (``publish_now``).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from hub_sync.core.errors import FormatError
from hub_sync.hub.audit import AuditLog
from hub_sync.hub.channels import Channels
from hub_sync.hub.console_errors import ConsoleError, DecidedError, NotFoundError
from hub_sync.hub.database import transaction
from hub_sync.hub.downlink import Downlink
from hub_sync.hub.offers import CURRICULUM, Offer, Offers
from hub_sync.hub.publisher import publish

if TYPE_CHECKING:
    from hub_sync.hub.hub import Hub

__all__ = ["Reviews", "MAX_REASON_CHARS"]

MAX_REASON_CHARS = 500
KINDS = ("video", "audio", "document", "html", "image", "exercise")


def _decided(offer: Offer, action_zh: str, action_en: str) -> DecidedError:
    state_zh = {"approved": "已通过", "rejected": "已退回", "withdrawn": "已撤下", "pending": "待审核"}[offer.state]
    who = offer.decided_by or "?"
    return DecidedError(f"不能{action_zh}：这份资源{state_zh}（{who} 决定），未做任何更改",
                        f"cannot {action_en}: this offer is already {offer.state} (decided by {who}); nothing changed",
                        state=offer.state, decided_by=who)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ConsoleError("请写明原因，老师会看到它", "give a reason; the teacher will see it")
    if len(reason) > MAX_REASON_CHARS:
        raise ConsoleError(f"原因最多 {MAX_REASON_CHARS} 字", f"the reason may be at most {MAX_REASON_CHARS} characters")
    return reason


class Reviews:
    """The reviewers' decisions on one hub."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.db = hub.db
        self.offers = Offers(hub.db)

    def missing_files(self, offer: Offer) -> list[dict]:
        """The offer's files not (yet) in the hub's store."""
        return [f for f in offer.files if not self.hub.store.has(f["sha256"])]

    def edit(self, offer_id: int, actor: str, changes: dict) -> Offer:
        """Change a pending offer's curriculum metadata (audited with what changed)."""
        offer = self.offers.get(offer_id)
        meta = dict(offer.meta)
        meta.update({k: str(changes[k]).strip() for k in CURRICULUM if k in changes and changes[k] is not None})
        if not meta.get("title"):
            raise ConsoleError("标题不能为空", "the title may not be empty")
        if meta.get("kind") not in KINDS:
            raise ConsoleError(f"类型必须是 {'/'.join(KINDS)} 之一", f"kind must be one of {', '.join(KINDS)}")
        with transaction(self.db):
            done = self.db.execute("update offers set meta = ? where id = ? and state = 'pending'",
                                   [json.dumps(meta, ensure_ascii=False), offer_id]).rowcount
            if not done:
                raise _decided(self.offers.get(offer_id), "修改", "edit it")
            diff = {k: [offer.meta.get(k, ""), meta[k]] for k in CURRICULUM if offer.meta.get(k, "") != meta.get(k, "")}
            AuditLog(self.db).append(actor, "metadata_edited", f"offer:{offer_id}", "", {"changes": diff})
        return self.offers.get(offer_id)

    def approve(self, offer_id: int, actor: str, channel: str, publish_now: bool = False) -> Offer:
        """Approve a pending offer into ``channel`` (which must exist); publish at once if asked."""
        offer = self.offers.get(offer_id)
        try:
            Channels(self.db).get(channel)
        except FormatError:
            raise NotFoundError(f"没有频道 {channel!r}，请选择已有的频道，未做任何更改",
                                f"there is no channel {channel!r}; choose an existing one. Nothing changed") from None
        missing = self.missing_files(offer)
        if offer.state == "pending" and missing:
            raise ConsoleError(f"还没有收到这份资源的 {len(missing)} 个文件（下次同步时上传），暂不能通过",
                               f"{len(missing)} file(s) of this offer have not arrived yet (they come with the next sync); "
                               "it cannot be approved yet")
        published_id = f"c-{offer.id}"
        now = time.time()
        with transaction(self.db):
            done = self.db.execute("update offers set state = 'approved', channel = ?, published_id = ?, decided_by = ?,"
                                   " decided_at = ?, reason = '' where id = ? and state = 'pending'",
                                   [channel, published_id, actor, now, offer_id]).rowcount
            if not done:
                raise _decided(self.offers.get(offer_id), "通过", "approve it")
            Channels(self.db).put_resource(published_id, channel, {**offer.meta, "source": "teacher"}, offer.files)
            Downlink(self.db).queue(offer.school_code, "share_status",
                                    {"resource_id": offer.resource_id, "status": "approved",
                                     "note": f"已通过审核，发布在频道 {channel} (approved into channel {channel})"})
            AuditLog(self.db).append(actor, "approved", f"offer:{offer_id}", "",
                                     {"channel": channel, "published_id": published_id, "publish_now": publish_now,
                                      "title": offer.title, "school": offer.school_code})
        if publish_now:
            publish(self.hub, {channel})
        return self.offers.get(offer_id)

    def reject(self, offer_id: int, actor: str, reason: str) -> Offer:
        """Reject a pending offer with a reason the teacher will read."""
        reason = _reason(reason)
        offer = self.offers.get(offer_id)
        with transaction(self.db):
            done = self.db.execute("update offers set state = 'rejected', reason = ?, decided_by = ?, decided_at = ?"
                                   " where id = ? and state = 'pending'", [reason, actor, time.time(), offer_id]).rowcount
            if not done:
                raise _decided(self.offers.get(offer_id), "退回", "reject it")
            Downlink(self.db).queue(offer.school_code, "share_status",
                                    {"resource_id": offer.resource_id, "status": "rejected", "note": reason})
            AuditLog(self.db).append(actor, "rejected", f"offer:{offer_id}", reason,
                                     {"title": offer.title, "school": offer.school_code})
        return self.offers.get(offer_id)

    def withdraw(self, offer_id: int, actor: str, reason: str, publish_now: bool = True) -> Offer:
        """Take an approved resource out of its channel; with the next sync every school drops it."""
        reason = _reason(reason)
        offer = self.offers.get(offer_id)
        with transaction(self.db):
            done = self.db.execute("update offers set state = 'withdrawn', reason = ?, decided_by = ?, decided_at = ?"
                                   " where id = ? and state = 'approved'", [reason, actor, time.time(), offer_id]).rowcount
            if not done:
                raise _decided(self.offers.get(offer_id), "撤下", "withdraw it")
            if self.db.execute("select 1 from hub_resources where id = ?", [offer.published_id]).fetchone():
                Channels(self.db).remove_resource(offer.published_id)
            Downlink(self.db).queue(offer.school_code, "share_status",
                                    {"resource_id": offer.resource_id, "status": "rejected",
                                     "note": f"已从县平台撤下 (withdrawn): {reason}"})
            AuditLog(self.db).append(actor, "withdrawn", f"offer:{offer_id}", reason,
                                     {"channel": offer.channel, "published_id": offer.published_id, "title": offer.title})
        if publish_now and offer.channel:
            publish(self.hub, {offer.channel})
        return self.offers.get(offer_id)
