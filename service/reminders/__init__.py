"""Member reminders (订阅消息): one-time grants, reminder kinds, quiet hours, pluggable senders."""
