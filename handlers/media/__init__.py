"""Media: stored files attached to posts and events, and profile images."""
