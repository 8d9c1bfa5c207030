"""Presentation only: templates, static assets and translations (zh-CN default, English) for the classroom pages."""
