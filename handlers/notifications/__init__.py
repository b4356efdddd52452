"""Notifications: sending one (stored row plus a message on the recipient's topic) and the recipient's inbox."""
