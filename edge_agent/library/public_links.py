"""``run/public/``: the content files nginx may send without asking the app.

The nginx front (``edge_agent.front``) sends ``/content/<sha256>/<name>`` straight
from this folder: one symbolic link per catalogued blob that is not an exercise's
answer key (``resource_files.answer_key``). Everything else reaches the app, which
decides (answer keys go to teachers only), so the rule fails closed: no link, no
direct serving. A quarantined blob leaves a dangling link, which nginx treats as
missing. Rebuilt before serving and whenever the catalogue's generation changes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from hub_sync.core.blobstore import is_sha256

if TYPE_CHECKING:
    from edge_agent.appliance import Appliance

log = logging.getLogger(__name__)

LINKS_POLL_S = 2.0  # how often the links job looks at the catalogue's generation


# every catalogued blob, and whether any file naming it holds an exercise's answers
_BLOBS_SQL = "select sha256, max(answer_key) from resource_files group by sha256"


class PublicLinks:
    """``run/public/ab/cdef...``: a symbolic link to each catalogued blob nginx may send
    to anyone, i.e. every blob but the exercises' answer keys.

    Fail-closed: a blob without a link goes to the app, which checks it. A
    quarantined blob leaves a dangling link, which nginx treats as missing. Rebuilt
    before serving and then whenever the catalogue's generation changes (``job``)."""

    def __init__(self, appliance: "Appliance", public: Path) -> None:
        self.appliance = appliance
        self.public = public
        self._generation: object = None

    def wanted(self) -> set[str]:
        """The blobs that may be sent without asking the app."""
        try:
            rows = self.appliance.db.execute(_BLOBS_SQL).fetchall()
        except sqlite3.OperationalError:  # a catalogue without answer-key marks: link nothing
            return set()
        return {sha for sha, answer_key in rows if not answer_key and is_sha256(sha)}

    def refresh(self) -> tuple[int, int]:
        """Make the links match the catalogue; return (added, removed)."""
        self._generation = self.appliance.catalogue.generation()
        wanted = self.wanted()
        have = set()
        self.public.mkdir(mode=0o700, exist_ok=True)
        removed = 0
        for sub in self.public.iterdir():
            for link in sub.iterdir():
                sha = sub.name + link.name
                if sha in wanted:
                    have.add(sha)
                else:  # no longer catalogued, or now an answer key
                    link.unlink(missing_ok=True)
                    removed += 1
        root = self.appliance.store.root.resolve()
        for sha in wanted - have:
            link = self.public / sha[:2] / sha[2:]
            link.parent.mkdir(mode=0o700, exist_ok=True)
            try:
                link.symlink_to(root / sha[:2] / sha[2:])
            except FileExistsError:
                pass
        return len(wanted - have), removed

    def job(self, appliance: "Appliance") -> Callable[[], None]:
        """A background job (runner.Job): refresh whenever the catalogue changed."""
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(LINKS_POLL_S):
                try:
                    if appliance.catalogue.generation() != self._generation:
                        self.refresh()
                except Exception:  # a busy database now: try again at the next turn
                    log.exception("could not refresh the public content links")
                finally:
                    appliance.release()

        thread = threading.Thread(target=run, name="public-links", daemon=True)
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join(LINKS_POLL_S + 1)

        return halt
