"""Badges and titles (徽章 / 头衔): definitions, progress from domain events, earning."""
