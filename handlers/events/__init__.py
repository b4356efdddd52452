"""Events: scheduled runs of a process: the event, its times, participants, calendar, reminders, chat, tags."""
