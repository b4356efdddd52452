"""Live AI sessions, domain side: contexts and their messages, prompts, suggested operations and applying them."""
