"""Learning spaces (一人一空间): people and rosters, login, classes, assignments,
exercises, progress, submissions, messages, teachers' resources, and the JSON API
under ``/api/v1/``. See the README section "Learning spaces".

Importing this package is cheap (no Flask); ``register(app)`` adds the blueprints.
"""

from __future__ import annotations


def register(app) -> None:
    """Add the learning-space blueprints and CSRF protection to the appliance app, and
    tell the content routes who may read exercise answer keys (teachers, administrators)."""
    from edge_agent.library.content_api import ANSWER_KEY_READER
    from edge_agent.spaces.api_auth import bp as auth_bp
    from edge_agent.spaces.api_common import init_csrf, request_may_read_answer_keys
    from edge_agent.spaces.api_social import bp as social_bp
    from edge_agent.spaces import idempotency
    from edge_agent.spaces.api_teaching import bp as teaching_bp

    init_csrf(app)
    idempotency.init_app(app)  # Idempotency-Key on every state-changing /api/v1/ request
    app.extensions[ANSWER_KEY_READER] = request_may_read_answer_keys
    for bp in (auth_bp, teaching_bp, social_bp):
        app.register_blueprint(bp)
