"""Daily check-ins: campaigns, streaks, make-ups, calendars."""
