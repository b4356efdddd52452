"""Posts: the feed and event-room posts, and who may see which post."""
