"""Accounts: sign-up and sign-in sessions, the signed-in cache, users, profiles, preferences, administration."""
