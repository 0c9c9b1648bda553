"""Outreach: pickup reminders and review requests under consent, TCPA and HIPAA rules, and patients' replies.

Pure parts (resources and ``now`` in, resources out): :mod:`.policy`, :mod:`.templates`, :mod:`.schedule`,
:mod:`.inbound`, :mod:`.review`. Service parts (store and HTTP): :mod:`.gateway`, :mod:`.outbox`,
:mod:`.dispatcher`, :mod:`.worker` (the loop; ``start_dispatcher`` for ``interop serve``), :mod:`.webhook`
(``POST /inbound/sms``), :mod:`.commands` (``interop worker``).
"""

from interop.outreach.inbound import Reply, classify
from interop.outreach.policy import Decision, Message, PolicySettings, consent_resource, decide, revoked
from interop.outreach.review import review_followups
from interop.outreach.schedule import ScheduleSettings, pickup_requests
from interop.outreach.templates import load_templates, render

__all__ = [
    "Decision",
    "Message",
    "PolicySettings",
    "Reply",
    "ScheduleSettings",
    "classify",
    "consent_resource",
    "decide",
    "load_templates",
    "pickup_requests",
    "render",
    "review_followups",
    "revoked",
]
