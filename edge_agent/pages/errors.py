"""Errors on pages are pages: a clear message in the user's language and what to do next.

The JSON APIs keep their JSON bodies (``edge_agent.app``); page blueprints call
``page_errors(bp)`` so their failures render ``error.html`` instead.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request
from flask_babel import get_locale
from werkzeug.exceptions import HTTPException

from hub_sync.core.errors import Problem

_HTTP = {
    400: ("请求有误，请返回上一页重试。", "The request was not understood. Go back and try again."),
    403: ("你没有权限打开这个页面。请用自己的账号登录。", "You may not open this page. Log in with your own account."),
    404: ("找不到这个页面或资源，它可能已被移除。请返回资源库。", "This page or resource cannot be found; it may have been removed. Go back to the library."),
    413: ("文件太大，无法上传。请选小一点的文件。", "The file is too large to upload. Choose a smaller file."),
}


def error_page(zh: str, en: str, status: int):
    message = en if get_locale().language == "en" else zh
    return render_template("error.html", message=message, status=status), status


def page_errors(bp: Blueprint) -> None:
    """Render expected errors of this blueprint's views as HTML pages."""

    @bp.errorhandler(Problem)
    def problem(exc: Problem):
        if request.path.startswith("/api/"):
            return jsonify(exc.to_json()), exc.http_status
        return error_page(exc.zh, exc.en, exc.http_status)

    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = exc.code or 500
        zh, en = _HTTP.get(code, ("出错了，请稍后重试。", "Something went wrong; try again later."))
        return error_page(zh, en, code)
